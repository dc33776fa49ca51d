/**
 * Shadow comparison on the device: a candidate model loaded beside the active one receives a sampled share of
 * live requests AFTER the active response is computed, through a bounded queue drained one request at a time,
 * and only while no active request is in flight. The active path pays one random draw and, when sampled, an array push; a
 * full queue drops the mirror (counted), never delays the response.
 *
 * Agreement (the same rule the fleet's gate documents in ShadowStatsSchema): classifiers (last output
 * dimension > 1) agree on a row when the top-1 class is the same; regressors when every output is within
 * `1e-3 + 1e-2·|active|`. A request agrees when all its rows do.
 */
import { bucketOf, emptyBuckets } from '../../shared/histogram.js';
import type { ModelRef, ShadowStats } from '../../shared/protocol/messages.js';
import type { FeedTensor, LoadedModel, OutputTensor } from './ort.js';

export interface ShadowCandidate {
  model: ModelRef;
  loaded: LoadedModel;
  /** Share of the active model's requests mirrored, 0–100. */
  percent: number;
  /** The candidate's first output, compared with the active model's first output. */
  output: string;
}

interface Job {
  active: ModelRef;
  feeds: Record<string, FeedTensor>;
  activeOutput: OutputTensor;
  activeLatencyMs: number;
}

interface Entry {
  candidate: ShadowCandidate;
  queue: Job[];
  draining: boolean;
  stats: Omit<ShadowStats, 'active' | 'candidate'> & { active: ModelRef | null };
}

function emptyStats(): Entry['stats'] {
  return {
    active: null,
    mirrored: 0,
    compared: 0,
    agreed: 0,
    dropped: 0,
    errors: 0,
    activeLatencyBuckets: emptyBuckets(),
    candidateLatencyBuckets: emptyBuckets(),
  };
}

export class ShadowRunner {
  private readonly byName = new Map<string, Entry>();

  /** Active requests in flight (the inference API brackets each with enter/leave). */
  private active = 0;

  constructor(private readonly options: { capacity: number; random: () => number; now: () => number }) {}

  /** An active request started: shadow work waits until none is in flight. */
  enter(): void {
    this.active++;
  }

  leave(): void {
    this.active--;
  }

  /** Start shadowing `candidate` for its model name (replacing, and returning, any previous candidate). */
  set(candidate: ShadowCandidate): ShadowCandidate | undefined {
    const previous = this.byName.get(candidate.model.name);
    this.byName.set(candidate.model.name, { candidate, queue: [], draining: false, stats: emptyStats() });
    return previous?.candidate;
  }

  get(name: string): ShadowCandidate | undefined {
    return this.byName.get(name)?.candidate;
  }

  /** Stop shadowing `model` (if it is the candidate); returns it so the caller can activate or release it. */
  take(model: ModelRef): ShadowCandidate | undefined {
    const entry = this.byName.get(model.name);
    if (!entry || entry.candidate.model.version !== model.version) return undefined;
    this.byName.delete(model.name);
    entry.queue.length = 0;
    return entry.candidate;
  }

  /** Called after the active model answered: maybe mirror the request to the candidate. Never throws. */
  offer(
    active: ModelRef,
    feeds: Record<string, FeedTensor>,
    outputs: Record<string, OutputTensor>,
    outputName: string,
    latencyMs: number,
  ): void {
    const entry = this.byName.get(active.name);
    if (!entry || entry.candidate.model.version === active.version) return;
    if (this.options.random() * 100 >= entry.candidate.percent) return;
    entry.stats.mirrored++;
    const activeOutput = outputs[outputName];
    if (!activeOutput || entry.queue.length >= this.options.capacity) {
      entry.stats.dropped++;
      return;
    }
    entry.queue.push({ active, feeds, activeOutput, activeLatencyMs: latencyMs });
    if (!entry.draining) {
      entry.draining = true;
      setImmediate(() => void this.drain(entry));
    }
  }

  /** The window's aggregates per candidate (reset), for telemetry. */
  takeStats(): ShadowStats[] {
    const out: ShadowStats[] = [];
    for (const entry of this.byName.values()) {
      const s = entry.stats;
      entry.stats = emptyStats();
      if (!s.active) continue; // nothing mirrored yet: no active version to name
      out.push({ ...s, active: s.active, candidate: entry.candidate.model });
    }
    return out;
  }

  /** Wait until every queue is empty (tests, benchmarks). */
  async idle(): Promise<void> {
    while ([...this.byName.values()].some((e) => e.draining)) await new Promise((r) => setImmediate(r));
  }

  private async drain(entry: Entry): Promise<void> {
    try {
      while (entry.queue.length > 0 && this.byName.get(entry.candidate.model.name) === entry) {
        // Active work first: wait for a moment with no active request in flight (the queue may fill and drop).
        while (this.active > 0 && this.byName.get(entry.candidate.model.name) === entry) {
          await new Promise((r) => setTimeout(r, 1));
        }
        const job = entry.queue.shift();
        if (!job) break;
        const started = this.options.now();
        let agreed = false;
        try {
          const out = await entry.candidate.loaded.run(job.feeds);
          const candidateMs = this.options.now() - started;
          const output = out[entry.candidate.output];
          if (!output) throw new Error(`candidate has no output ${entry.candidate.output}`);
          agreed = agrees(job.activeOutput, output);
          entry.stats.active = job.active;
          entry.stats.compared++;
          if (agreed) entry.stats.agreed++;
          entry.stats.activeLatencyBuckets[bucketOf(job.activeLatencyMs)]!++;
          entry.stats.candidateLatencyBuckets[bucketOf(candidateMs)]!++;
        } catch {
          entry.stats.active = job.active;
          entry.stats.errors++;
        }
        // Yield between jobs so active requests arriving meanwhile go first.
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      entry.draining = false;
    }
  }
}

/** Whether the candidate's output agrees with the active one's, row by row (see the module comment). */
export function agrees(active: OutputTensor, candidate: OutputTensor): boolean {
  const a = active.data;
  const c = candidate.data;
  if (a.length !== c.length || a.length === 0) return false;
  const k = active.dims.length > 1 ? Number(active.dims[active.dims.length - 1]) : 1;
  if (k > 1) {
    for (let row = 0; row < a.length; row += k) {
      if (argmax(a, row, k) !== argmax(c, row, k)) return false;
    }
    return true;
  }
  for (let i = 0; i < a.length; i++) {
    const x = Number(a[i]);
    if (!(Math.abs(x - Number(c[i])) <= 1e-3 + 1e-2 * Math.abs(x))) return false;
  }
  return true;
}

function argmax(values: ArrayLike<number | bigint | boolean>, offset: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (Number(values[offset + j]) > Number(values[offset + best])) best = j;
  return best;
}
