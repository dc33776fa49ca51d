/**
 * The data pool: tasks and their samples, with the reasons samples were refused counted per source.
 * Invariants: only samples that pass `validateSample` are stored; a sample id is stored at most once (a
 * re-delivered batch or a re-imported file changes nothing); every refusal is counted, none is silent.
 *
 * Storage: `tasks` name → Task; `samples` `<task>/<id>` → Sample (bytes, see `encodeSample`);
 * `pool-counters` `<task>/accepted/<source>` and `<task>/rejected/<source>/<reason>` → number.
 */
import { ConflictError, NotFoundError } from '../../shared/errors.js';
import {
  type RejectionReason,
  type Sample,
  type Task,
  TaskSchema,
  validateSample,
} from '../../shared/pool.js';
import type { BatchOp, Collection, Db } from '../store/db.js';
import { KeyedMutex } from '../store/lock.js';
import { firstVersion, migrated } from '../store/migrations.js';

export interface IngestResult {
  accepted: number;
  /** Already in the pool (same id): not stored again, not an error. */
  duplicates: number;
  rejected: Partial<Record<RejectionReason, number>>;
  /** The first few refusals, for the caller's error message. */
  examples: { id: string; reason: RejectionReason; detail: string }[];
}

export interface TaskStats {
  samples: number;
  labeled: number;
  acceptedBySource: Record<string, number>;
  rejectedBySource: Record<string, Partial<Record<RejectionReason, number>>>;
}

interface PendingIngest {
  task: Task;
  source: string;
  batch: Sample[];
  resolve: (result: IngestResult) => void;
  reject: (err: unknown) => void;
}

export class Pool {
  private readonly tasks: Collection<Task>;
  private readonly samples: Collection<Buffer>;
  private readonly counters: Collection<number>;
  private readonly lock = new KeyedMutex();
  /** Batches waiting for the task's next group write, by task name. */
  private readonly pending = new Map<string, PendingIngest[]>();
  /** Counter values as stored (this Pool is their only writer), loaded on first use. */
  private readonly counterCache = new Map<string, number>();

  constructor(private readonly db: Db) {
    this.tasks = migrated(db.collection<Task>('tasks'), firstVersion('tasks'));
    // Samples are bytes this module encodes (`encodeSample`) and counters plain numbers: neither can carry a
    // schema version field; a change of either's encoding is this module's to read both ways.
    this.samples = db.bytesCollection('samples');
    this.counters = db.collection<number>('pool-counters');
  }

  async createTask(input: unknown): Promise<Task> {
    const task = TaskSchema.parse(input);
    return this.lock.run(`task:${task.name}`, async () => {
      if (await this.tasks.get(task.name))
        throw new ConflictError(`task '${task.name}' already exists`, 'task_exists');
      await this.tasks.put(task.name, task);
      return task;
    });
  }

  async findTask(name: string): Promise<Task | undefined> {
    return this.tasks.get(name);
  }

  async getTask(name: string): Promise<Task> {
    const task = await this.tasks.get(name);
    if (!task) throw new NotFoundError('task', name);
    return task;
  }

  listTasks(): Promise<Task[]> {
    return this.tasks.values();
  }

  /** The task that trains `model`, if any (devices capture by model name). */
  async taskForModel(model: string): Promise<Task | undefined> {
    return (await this.tasks.values()).find((t) => t.model === model);
  }

  /**
   * Validate and store a batch from one source. Counted per source and reason. Serialized per task so
   * duplicate detection and counters are exact under concurrent batches; batches that arrive while one is
   * being written are written together next (group commit: one duplicate lookup and one atomic LevelDB
   * batch for all of them, samples and counters alike), each still getting its own result.
   */
  ingest(task: Task, source: string, batch: Sample[]): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      const key = task.name;
      const waiting = this.pending.get(key) ?? [];
      waiting.push({ task, source, batch, resolve, reject });
      this.pending.set(key, waiting);
      if (waiting.length === 1) {
        void this.lock.run(`ingest:${key}`, async () => {
          const group = this.pending.get(key) ?? [];
          this.pending.delete(key);
          try {
            const results = await this.ingestGroup(group);
            group.forEach((g, i) => {
              g.resolve(results[i]!);
            });
          } catch (err) {
            for (const g of group) g.reject(err);
          }
        });
      }
    });
  }

  private async ingestGroup(group: PendingIngest[]): Promise<IngestResult[]> {
    const keys: string[] = [];
    for (const { task, batch } of group) for (const sample of batch) keys.push(`${task.name}/${sample.id}`);
    const stored = await this.samples.hasMany(keys);
    // Keys accepted in this group so far: a sample twice in one group is stored once.
    const accepted = new Set<string>();
    const puts: BatchOp[] = [];
    const counts = new Map<string, number>();
    const add = (key: string, n: number) => counts.set(key, (counts.get(key) ?? 0) + n);
    let k = 0;
    const results = group.map(({ task, source, batch }) => {
      const result: IngestResult = { accepted: 0, duplicates: 0, rejected: {}, examples: [] };
      for (const sample of batch) {
        const key = keys[k]!;
        const isStored = stored[k++];
        const verdict = validateSample(task, sample);
        if (!verdict.ok) {
          result.rejected[verdict.reason] = (result.rejected[verdict.reason] ?? 0) + 1;
          if (result.examples.length < 5)
            result.examples.push({ id: sample.id, reason: verdict.reason, detail: verdict.detail });
        } else if (isStored || accepted.has(key)) {
          result.duplicates++;
        } else {
          accepted.add(key);
          puts.push(this.samples.putOp(key, encodeSample(sample)));
          result.accepted++;
        }
      }
      add(`${task.name}/accepted/${source}`, result.accepted);
      for (const [reason, n] of Object.entries(result.rejected))
        add(`${task.name}/rejected/${source}/${reason}`, n);
      return result;
    });
    // Samples and their counters in one atomic batch: a count never disagrees with what is stored.
    const counterOps = await this.counterOps([...counts]);
    const ops = puts.concat(counterOps.ops);
    if (ops.length > 0) await this.db.batch(ops);
    counterOps.commit();
    return results;
  }

  /** Count a batch refused before it reached a task (unknown task, malformed, oversize). */
  countRejected(taskName: string, source: string, reason: RejectionReason, n: number): Promise<void> {
    return this.lock.run(`ingest:${taskName}`, () =>
      this.count(`${taskName}/rejected/${source}/${reason}`, n),
    );
  }

  async stats(task: Task): Promise<TaskStats> {
    const stats: TaskStats = { samples: 0, labeled: 0, acceptedBySource: {}, rejectedBySource: {} };
    for (const bytes of await this.samples.values(`${task.name}/`)) {
      stats.samples++;
      if (decodeSample(bytes).label !== null) stats.labeled++;
    }
    for (const [key, n] of await this.counters.entries(`${task.name}/`)) {
      const [, kind, source, reason] = key.split('/');
      if (kind === 'accepted') stats.acceptedBySource[source!] = n;
      else {
        const bySource = stats.rejectedBySource[source!] ?? {};
        bySource[reason as RejectionReason] = n;
        stats.rejectedBySource[source!] = bySource;
      }
    }
    return stats;
  }

  /** Samples accepted for a task so far, from the counters (cheap: no sample is read). */
  async acceptedCount(task: Task): Promise<number> {
    const entries = await this.counters.entries(`${task.name}/accepted/`);
    return entries.reduce((n, [, count]) => n + count, 0);
  }

  /** Every refusal counter: per task (or `model:<name>` / `(unparsed)` before a task is known), source, reason. */
  async rejections(): Promise<{ task: string; source: string; reason: string; count: number }[]> {
    return (await this.counters.entries())
      .map(([key, count]) => {
        const parts = key.split('/');
        return { parts, count };
      })
      .filter(({ parts }) => parts[1] === 'rejected')
      .map(({ parts, count }) => ({ task: parts[0]!, source: parts[2]!, reason: parts[3]!, count }));
  }

  /** Labeled samples of a task captured at or after `sinceMs` (the retrain loop waits for enough new data). */
  async labeledSince(task: Task, sinceMs: number): Promise<number> {
    let n = 0;
    for (const bytes of await this.samples.values(`${task.name}/`)) {
      const sample = decodeSample(bytes);
      if (sample.ts >= sinceMs && sample.label !== null) n++;
    }
    return n;
  }

  /** Every sample of a task, ordered by id (the order a snapshot freezes). */
  async samplesOf(task: Task): Promise<Sample[]> {
    const all = (await this.samples.values(`${task.name}/`)).map(decodeSample);
    return all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private async count(key: string, n: number): Promise<void> {
    const { ops, commit } = await this.counterOps([[key, n]]);
    if (ops.length > 0) await this.db.batch(ops);
    commit();
  }

  /** Writes adding `n` to each counter; `commit` updates the cache once the batch is on disk. */
  private async counterOps(adds: [string, number][]) {
    const nonZero = adds.filter(([, n]) => n !== 0);
    const missing = nonZero.map(([key]) => key).filter((key) => !this.counterCache.has(key));
    if (missing.length > 0) {
      const stored = await this.counters.getMany(missing);
      missing.forEach((key, i) => {
        this.counterCache.set(key, stored[i] ?? 0);
      });
    }
    const next = nonZero.map(([key, n]) => [key, this.counterCache.get(key)! + n] as const);
    return {
      ops: next.map(([key, value]) => this.counters.putOp(key, value)),
      commit: () => {
        for (const [key, value] of next) this.counterCache.set(key, value);
      },
    };
  }
}

/** First byte of a sample stored as `encodeSample` lays it out. Samples stored as JSON text start with `{`. */
const SAMPLE_FORMAT_1 = 1;
const JSON_OPEN_BRACE = 0x7b;

/**
 * A sample as stored: `[1][u32 LE feature count][count × f64 LE][UTF-8 JSON of [id, source, label, ts]]`.
 * Features go in binary because printing them as JSON text cost more than the rest of storing a sample; the
 * value read back is the one JSON text would give (float64 is exact; -0 is stored as 0, as JSON prints it).
 */
function encodeSample(sample: Sample): Buffer {
  const { features } = sample;
  const head = JSON.stringify([sample.id, sample.source, sample.label, sample.ts]);
  const bodyBytes = 5 + 8 * features.length;
  const bytes = Buffer.allocUnsafe(bodyBytes + Buffer.byteLength(head));
  bytes[0] = SAMPLE_FORMAT_1;
  bytes.writeUInt32LE(features.length, 1);
  for (let i = 0; i < features.length; i++) bytes.writeDoubleLE(features[i]! + 0, 5 + 8 * i);
  bytes.write(head, bodyBytes);
  return bytes;
}

/** A stored sample, in either layout: `encodeSample`'s, or the JSON text samples were stored as before it. */
function decodeSample(bytes: Buffer): Sample {
  if (bytes[0] === JSON_OPEN_BRACE) return JSON.parse(bytes.toString()) as Sample;
  if (bytes[0] !== SAMPLE_FORMAT_1) throw new Error(`stored sample in unknown format ${bytes[0]}`);
  const count = bytes.readUInt32LE(1);
  const features = new Array<number>(count);
  for (let i = 0; i < count; i++) features[i] = bytes.readDoubleLE(5 + 8 * i);
  const [id, source, label, ts] = JSON.parse(bytes.toString('utf8', 5 + 8 * count)) as [
    string,
    string,
    Sample['label'],
    number,
  ];
  return { id, source, features, label, ts };
}
