/**
 * Training runs: the fleet's side of `edgefleet train`. A run trains a task's model on one immutable
 * snapshot (taken at request time when none is named), off the request path, and registers the result.
 *
 * Lifecycle: `queued` → `running` → `succeeded` | `failed`. Runs execute one at a time, in order (training
 * uses every core it gets; two at once would only slow both). The record is persisted at every change,
 * progress included, so the API and the CLI read a run's epoch, loss and metrics while it trains.
 * A run that was queued or running when the fleet server stopped is marked failed (`interrupted`) at start:
 * its worker died with the process, and re-running it is the operator's call.
 *
 * On success the version is registered with its lineage and reference statistics (signed into the manifest)
 * and becomes the model's `candidate`. The champion (the model's `production` version, if any) is evaluated
 * on the same holdout and recorded beside the challenger's metrics.
 *
 * Storage: `training-runs` id → TrainingRunRecord; ids sort by creation time.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { TrainRequest } from '../../shared/api/pool.js';
import {
  ConflictError,
  EdgefleetError,
  NotFoundError,
  UnprocessableError,
  ValidationError,
} from '../../shared/errors.js';
import type { Sample, Task } from '../../shared/pool.js';
import type { Pool } from '../pool/pool.js';
import type { SnapshotRecord, Snapshots } from '../pool/snapshots.js';
import type { Lineage, ModelRegistry } from '../registry/models.js';
import type { ArtifactStore } from '../store/artifacts.js';
import type { Collection } from '../store/db.js';
import { SortableIds } from '../store/ids.js';
import { type Migrations, migrated } from '../store/migrations.js';
import { parseTrainConfig, type TrainConfig, TrainConfigSchema } from './config.js';
import type {
  ChampionInput,
  ChampionResult,
  ProgressListener,
  TrainingJobInput,
  TrainingJobResult,
} from './job.js';
import type { Metrics } from './metrics.js';
import type { EpochProgress } from './train.js';

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface TrainingRunRecord {
  id: string;
  task: string;
  model: string;
  snapshot: string;
  /** The configuration as the job uses it (defaults resolved, kind from the task). */
  config: TrainConfig;
  status: RunStatus;
  createdAt: string;
  createdBy: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The TF.js backend that trained it, once known. */
  backend: string | null;
  /** The latest epoch's figures; `history` has every epoch. */
  progress: (EpochProgress & { epochs: number }) | null;
  history: EpochProgress[];
  /** Set when the retrain loop started the run; null otherwise. */
  trigger: RunTrigger | null;
  /** Holdout rows captured at or after this time are also scored on their own (`result.recent`); or null. */
  recentSince: string | null;
  result: {
    version: number;
    metrics: Metrics;
    champion: ChampionResult | null;
    /** The challenger on the recent holdout rows (`recentSince`). */
    recent: { rows: number; metrics: Metrics } | null;
    bestEpoch: number;
    stoppedEarly: boolean;
    trainRows: number;
    holdoutRows: number;
    parityMaxAbsDiff: number;
    durationMs: number;
  } | null;
  error: { code: string; message: string } | null;
}

/**
 * The `training-runs` collection's schema versions (store/migrations.ts). v2: `trigger`, `recentSince` and a
 * result's `recent` are always present (null in runs from before the retrain loop, which had none of them).
 */
export const TRAINING_RUN_MIGRATIONS: Migrations<TrainingRunRecord> = {
  name: 'training-runs',
  version: 2,
  steps: [
    (v1) => {
      const result = v1.result as Record<string, unknown> | null;
      return {
        ...v1,
        trigger: v1.trigger ?? null,
        recentSince: v1.recentSince ?? null,
        result: result && { ...result, recent: result.recent ?? null },
      };
    },
  ],
};

/** Why a run was started by the retrain loop (recorded in the run and in the version's lineage). */
export interface RunTrigger {
  retrain: string;
  kind: 'drift' | 'concept' | 'manual';
  reason: string;
}
export type { TrainRequest };

/** Runs one job; must reject promptly once `signal` aborts (the fleet server is stopping). */
export type JobRunner = (
  input: TrainingJobInput,
  onProgress: ProgressListener,
  signal: AbortSignal,
) => Promise<TrainingJobResult>;

/** Rows a snapshot must have labeled before training makes sense (each split needs some). */
export const MIN_LABELED_ROWS = 10;

export class TrainingRuns {
  private tail: Promise<void> = Promise.resolve();
  private readonly ids = new SortableIds('run');
  /** Settles when the run finishes (either way); for callers in this process (tests, the retrain loop). */
  private readonly finished = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();
  private readonly runs: Collection<TrainingRunRecord>;

  /** `runs` as stored: the runs apply `TRAINING_RUN_MIGRATIONS` to it. */
  constructor(
    runs: Collection<TrainingRunRecord>,
    private readonly pool: Pool,
    private readonly snapshots: Snapshots,
    private readonly models: ModelRegistry,
    private readonly artifacts: ArtifactStore,
    private readonly options: {
      runner: JobRunner;
      codeVersion: string;
      now: () => Date;
      log: Logger;
      /** Told after every write of a run, progress included: live updates. */
      onSaved?: (run: TrainingRunRecord) => void;
    },
  ) {
    this.runs = migrated(runs, TRAINING_RUN_MIGRATIONS);
  }

  /** Mark runs left unfinished by a previous process as failed. Call once at start, before any `start`. */
  async recover(): Promise<number> {
    let count = 0;
    for (const run of await this.runs.values()) {
      if (run.status !== 'queued' && run.status !== 'running') continue;
      await this.put({
        ...run,
        status: 'failed',
        finishedAt: this.options.now().toISOString(),
        error: { code: 'interrupted', message: `the fleet server stopped while the run was ${run.status}` },
      });
      count++;
    }
    return count;
  }

  /** Stop the running job (its run is recorded as failed, `interrupted`) and wait until nothing runs. */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.tail;
  }

  async start(
    taskName: string,
    request: TrainRequest,
    actor: string,
    trigger: RunTrigger | null = null,
    /**
     * `setCandidate: false` leaves the `candidate` alias alone (the retrain loop moves it only for a winner).
     * `id`: the id to start it under, for a caller that persists the id before it asks (the retrain loop): a
     * run that already exists under this id is returned as it is, so asking again after a crash starts
     * nothing twice.
     */
    options: { setCandidate?: boolean; id?: string } = {},
  ): Promise<TrainingRunRecord> {
    if (options.id !== undefined) {
      const existing = await this.runs.get(options.id);
      if (existing) return existing;
    }
    if (this.stopping.signal.aborted)
      throw new ConflictError('the fleet server is shutting down', 'shutting_down');
    const task = await this.pool.getTask(taskName);
    const config = resolveConfig(task, request.config ?? {});
    if (request.snapshot && request.since)
      throw new ValidationError(
        'give a snapshot or since, not both (since picks the samples of a new snapshot)',
        {
          code: 'invalid_request',
        },
      );
    const snapshot = request.snapshot
      ? await this.snapshots.get(request.snapshot)
      : await this.snapshots.create(
          task,
          actor,
          this.options.now(),
          request.since ? { since: new Date(request.since) } : {},
        );
    if (snapshot.task !== task.name) {
      throw new ValidationError(
        `snapshot ${snapshot.id} belongs to task '${snapshot.task}', not '${task.name}'`,
        {
          code: 'snapshot_task_mismatch',
        },
      );
    }
    if (snapshot.labeled < MIN_LABELED_ROWS) {
      throw new UnprocessableError(
        `snapshot ${snapshot.id} has ${snapshot.labeled} labeled samples; training needs at least ${MIN_LABELED_ROWS}`,
        'not_enough_labeled_samples',
      );
    }
    const now = this.options.now();
    const run: TrainingRunRecord = {
      id: options.id ?? this.ids.next(now),
      task: task.name,
      model: task.model,
      snapshot: snapshot.id,
      config,
      trigger,
      recentSince: request.recentSince ?? null,
      status: 'queued',
      createdAt: now.toISOString(),
      createdBy: actor,
      startedAt: null,
      finishedAt: null,
      backend: null,
      progress: null,
      history: [],
      result: null,
      error: null,
    };
    await this.put(run);
    const done = this.tail.then(() => this.execute(run, task, snapshot, options.setCandidate ?? true));
    this.tail = done;
    this.finished.set(run.id, done);
    return run;
  }

  /** A fresh run id, for a caller that must persist it before calling `start(…, { id })`. */
  newId(): string {
    return this.ids.next(this.options.now());
  }

  async get(id: string): Promise<TrainingRunRecord> {
    const run = await this.runs.get(id);
    if (!run) throw new NotFoundError('training run', id);
    return run;
  }

  /** Newest first; only the task's when given. */
  async list(task?: string): Promise<TrainingRunRecord[]> {
    const all = (await this.runs.values()).reverse();
    return task === undefined ? all : all.filter((r) => r.task === task);
  }

  /** Resolves with the run's final record once it has finished (in this process). */
  async settled(id: string): Promise<TrainingRunRecord> {
    await this.finished.get(id);
    return this.get(id);
  }

  private async put(run: TrainingRunRecord): Promise<void> {
    await this.runs.put(run.id, run);
    this.options.onSaved?.(run);
  }

  /** Never rejects: every failure ends up in the run's record. */
  private async execute(
    queued: TrainingRunRecord,
    task: Task,
    snapshot: SnapshotRecord,
    setCandidate: boolean,
  ): Promise<void> {
    const { log, now } = this.options;
    if (this.stopping.signal.aborted) return; // left queued: `recover` marks it at the next start
    let run: TrainingRunRecord = { ...queued, status: 'running', startedAt: now().toISOString() };
    // Progress arrives as events; writes are chained so the record on disk only ever moves forward.
    let writes = this.put(run);
    const save = (next: TrainingRunRecord) => {
      run = next;
      writes = writes.then(() => this.put(next));
      return writes;
    };
    const started = performance.now();
    try {
      const samples = await this.snapshots.samples(snapshot);
      const input: TrainingJobInput = {
        ...toArrays(task, samples),
        featureNames: task.features,
        ...(task.classes ? { classes: task.classes } : {}),
        config: run.config,
      };
      if (run.recentSince) {
        const since = Date.parse(run.recentSince);
        input.recent = Uint8Array.from(
          samples.filter((s) => s.label !== null),
          (s) => (s.ts >= since ? 1 : 0),
        );
      }
      // The runner may take ownership of (detach) the arrays: keep what is needed afterwards.
      const goldenRow = Array.from(input.features.subarray(0, task.features.length));
      const champion = await this.champion(task.model);
      if (champion) input.champion = champion;
      const result = await this.options.runner(
        input,
        (progress) => {
          void save({
            ...run,
            progress: { ...progress, epochs: run.config.epochs },
            history: [...run.history, progress],
          }).catch((err) => log.error({ err, run: run.id }, 'training progress not saved'));
        },
        this.stopping.signal,
      );
      await writes;
      const lineage: Lineage = {
        run: run.id,
        task: task.name,
        snapshot: snapshot.id,
        config: run.config,
        seed: run.config.seed,
        codeVersion: this.options.codeVersion,
        backend: result.backend,
        metrics: numbers(result.metrics),
        champion: result.champion && {
          version: result.champion.version,
          metrics: result.champion.metrics && numbers(result.champion.metrics),
          reason: result.champion.reason,
        },
        recent:
          result.recent && run.recentSince
            ? {
                since: run.recentSince,
                rows: result.recent.rows,
                metrics: numbers(result.recent.metrics),
                champion: result.champion?.recentMetrics ? numbers(result.champion.recentMetrics) : null,
              }
            : null,
        trigger: run.trigger,
        trainRows: result.trainRows,
        holdoutRows: result.holdoutRows,
        parityMaxAbsDiff: result.parityMaxAbsDiff,
        startedAt: run.startedAt!,
        durationMs: Math.round(performance.now() - started),
      };
      const version = await this.models.push(task.model, result.onnx, {
        actor: `training:${run.id}`,
        // Golden I/O from a real row of the data, not random inputs far outside what the model saw.
        sample: { inputs: [{ name: result.inputSpec.name, shape: [1, goldenRow.length], data: goldenRow }] },
        referenceStats: result.referenceStats,
        labels: { task: task.name, snapshot: snapshot.id, run: run.id },
        lineage,
      });
      if (setCandidate)
        await this.models.setAlias(task.model, 'candidate', version.version, `training:${run.id}`);
      await save({
        ...run,
        status: 'succeeded',
        backend: result.backend,
        finishedAt: now().toISOString(),
        result: {
          version: version.version,
          metrics: result.metrics,
          champion: result.champion,
          recent: result.recent,
          bestEpoch: result.bestEpoch,
          stoppedEarly: result.stoppedEarly,
          trainRows: result.trainRows,
          holdoutRows: result.holdoutRows,
          parityMaxAbsDiff: result.parityMaxAbsDiff,
          durationMs: lineage.durationMs,
        },
      });
      log.info(
        { run: run.id, model: task.model, version: version.version, metrics: result.metrics },
        'training run succeeded',
      );
    } catch (err) {
      const error =
        err instanceof EdgefleetError
          ? { code: err.code, message: err.message }
          : { code: 'training_failed', message: (err as Error).message ?? String(err) };
      if (error.code === 'interrupted') log.info({ run: run.id }, 'training run interrupted');
      else log.warn({ err, run: run.id }, 'training run failed');
      await writes.catch(() => undefined);
      await save({ ...run, status: 'failed', finishedAt: now().toISOString(), error }).catch((e) =>
        log.error({ err: e, run: run.id }, 'training run failure not saved'),
      );
    }
  }

  private async champion(model: string): Promise<ChampionInput | undefined> {
    let production: Awaited<ReturnType<ModelRegistry['resolve']>>;
    try {
      production = await this.models.resolve(model, 'production');
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of this.artifacts.read(production.artifact.sha256)) chunks.push(chunk as Buffer);
    return {
      version: production.version,
      onnx: new Uint8Array(Buffer.concat(chunks)),
      inputs: production.manifest.inputs,
      outputs: production.manifest.outputs,
    };
  }
}

/** The task's kind is the config's; a config naming another kind is refused before anything runs. */
export function resolveConfig(task: Task, raw: Record<string, unknown>): TrainConfig {
  if (raw['kind'] !== undefined && raw['kind'] !== task.kind) {
    throw new ValidationError(
      `config kind '${String(raw['kind'])}' does not match task '${task.name}' (${task.kind})`,
      {
        code: 'invalid_config',
      },
    );
  }
  const parsed = TrainConfigSchema.safeParse({ ...raw, kind: task.kind });
  if (!parsed.success) {
    throw new ValidationError(`training config: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`, {
      code: 'invalid_config',
    });
  }
  return parseTrainConfig(parsed.data);
}

/** Labeled samples as the job's arrays: class names become indices in the task's class order. */
export function toArrays(
  task: Task,
  samples: readonly Sample[],
): Pick<TrainingJobInput, 'features' | 'labels' | 'ids'> {
  const labeled = samples.filter((s) => s.label !== null);
  const d = task.features.length;
  const features = new Float32Array(labeled.length * d);
  const labels =
    task.kind === 'classification' ? new Int32Array(labeled.length) : new Float32Array(labeled.length);
  const classIndex = new Map((task.classes ?? []).map((c, i) => [c, i]));
  const ids: string[] = [];
  labeled.forEach((s, r) => {
    features.set(s.features, r * d);
    const label = task.kind === 'classification' ? classIndex.get(s.label as string) : (s.label as number);
    // The pool only stores samples that fit the task; this guards against a task edited under a snapshot.
    if (label === undefined || s.features.length !== d)
      throw new UnprocessableError(`sample ${s.id} does not fit task '${task.name}'`, 'sample_misfit');
    labels[r] = label;
    ids.push(s.id);
  });
  return { features, labels, ids };
}

function numbers(metrics: Metrics): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).filter(([, v]) => typeof v === 'number'));
}
