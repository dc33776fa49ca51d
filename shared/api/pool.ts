/**
 * The data pool and training on the wire: tasks with their statistics, imports, snapshots, training
 * requests and runs (with live progress). Pure zod. Task itself is shared/pool.ts's schema (the agent and
 * the fleet validate samples against it); the training configuration is the one the job resolves.
 */
import { z } from 'zod';
import { REJECTION_REASONS, TaskSchema } from '../pool.js';

// ---- requests -------------------------------------------------------------------------------------

export const ImportQuerySchema = z.object({
  format: z.enum(['csv', 'jsonl']).default('csv'),
  label: z.string().min(1).max(128).optional(),
  kind: z.enum(['classification', 'regression']).optional(),
  model: z.string().optional(),
  source: z
    .string()
    .regex(/^[\w.@-]{1,128}$/, 'source: letters, digits, _ . @ -')
    .default('upload'),
});
export type ImportQuery = z.input<typeof ImportQuerySchema>;

export const TrainConfigSchema = z
  .object({
    /** classification: softmax over classes, cross-entropy; regression: one linear output, MSE. */
    kind: z.enum(['classification', 'regression']),
    /** Units of each hidden layer, input side first. */
    hidden: z.array(z.number().int().positive().max(4096)).max(16).default([64, 64]),
    /** Activation of every hidden layer. */
    activation: z.enum(['relu', 'tanh', 'sigmoid']).default('relu'),
    /** Dropout rate after each hidden layer while training (0 = none); masks come from the seed. */
    dropout: z.number().min(0).max(0.9).default(0),
    /** Optimizer and its learning rate. */
    optimizer: z
      .object({
        /** adam or plain sgd. */
        name: z.enum(['adam', 'sgd']).default('adam'),
        /** Step size. */
        learningRate: z.number().positive().max(10).default(0.001),
      })
      .strict()
      .prefault({}),
    /** Most passes over the training split. */
    epochs: z.number().int().positive().max(10_000).default(20),
    /** Rows per gradient step. */
    batchSize: z.number().int().positive().max(65_536).default(256),
    /** Stop when the holdout loss has not improved for a while; the best epoch's weights are kept. */
    earlyStopping: z
      .object({
        /** Epochs without improvement before stopping. */
        patience: z.number().int().positive().max(10_000).default(3),
        /** An epoch improves only if its holdout loss is below the best by more than this. */
        minDelta: z.number().nonnegative().default(0),
      })
      .strict()
      .prefault({}),
    /** Expected share of rows held out (chosen by hashing each record's id, independent of seed). */
    holdoutFraction: z.number().gt(0).lt(1).default(0.2),
    /** Seeds initializers, the per-epoch shuffle and dropout masks. */
    seed: z.number().int().nonnegative().max(0x7fffffff).default(42),
    /** Quantile bins per feature (and per regression output) in the reference statistics. */
    referenceBins: z.number().int().min(1).max(100).default(10),
  })
  .strict();

/** What `POST /tasks/:name/train` accepts. The config is checked fully before the run is queued. */
export const TrainRequestSchema = z
  .object({
    snapshot: z.string().min(1).max(100).optional(),
    /** Any TrainConfig field; `kind` may be omitted (the task's) but must match the task when given. */
    config: z.record(z.string(), z.unknown()).optional(),
    /** Snapshot only the samples captured at or after this time (ISO 8601); not with `snapshot`. */
    since: z.iso.datetime({ offset: true }).optional(),
    /** Also score challenger and champion on the holdout samples captured at or after this time (ISO 8601). */
    recentSince: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

export type TrainRequest = z.infer<typeof TrainRequestSchema>;

// ---- responses ------------------------------------------------------------------------------------

export type Task = z.infer<typeof TaskSchema>;

const RejectionCountsSchema = z.partialRecord(z.enum(REJECTION_REASONS), z.number());

export const TaskStatsSchema = z.object({
  samples: z.number(),
  labeled: z.number(),
  acceptedBySource: z.record(z.string(), z.number()),
  rejectedBySource: z.record(z.string(), RejectionCountsSchema),
});
export type TaskStats = z.infer<typeof TaskStatsSchema>;

export const TaskListSchema = z.object({ tasks: z.array(TaskSchema) });
export const TaskWithStatsSchema = z.intersection(TaskSchema, z.object({ stats: TaskStatsSchema }));
export type TaskWithStats = z.infer<typeof TaskWithStatsSchema>;

/** What an import (or any batch of samples) came to. */
export const IngestResultSchema = z.object({
  accepted: z.number(),
  /** Already in the pool (same id): not stored again, not an error. */
  duplicates: z.number(),
  rejected: RejectionCountsSchema,
  /** The first few refusals. */
  examples: z.array(z.object({ id: z.string(), reason: z.enum(REJECTION_REASONS), detail: z.string() })),
});
export type IngestResult = z.infer<typeof IngestResultSchema>;

export const ImportResultSchema = IngestResultSchema.extend({ task: TaskSchema, created: z.boolean() });
export type ImportResult = z.infer<typeof ImportResultSchema>;

export const SnapshotSchema = z.object({
  id: z.string(),
  task: z.string(),
  sha256: z.string(),
  bytes: z.number(),
  count: z.number(),
  labeled: z.number(),
  /** Samples per source (device id, or import:<file>). */
  bySource: z.record(z.string(), z.number()),
  /** Samples per label. */
  byLabel: z.record(z.string(), z.number()),
  timeRange: z.object({ from: z.string(), to: z.string() }),
  /** Only samples captured at or after this time were taken (null: the whole pool). */
  since: z.string().nullable().optional(),
  createdAt: z.string(),
  createdBy: z.string(),
});
export type Snapshot = z.infer<typeof SnapshotSchema>;

export const SnapshotListSchema = z.object({ snapshots: z.array(SnapshotSchema) });

export const RejectionsSchema = z.object({
  rejections: z.array(
    z.object({ task: z.string(), source: z.string(), reason: z.string(), count: z.number() }),
  ),
});
export type Rejections = z.infer<typeof RejectionsSchema>;

/** Holdout metrics (classification or regression), as training reports them. */
export const MetricsSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('classification'),
    rows: z.number(),
    accuracy: z.number(),
    macroF1: z.number(),
    logLoss: z.number(),
    /** Binary classifiers only. */
    rocAuc: z.number().optional(),
  }),
  z.object({ kind: z.literal('regression'), rows: z.number(), rmse: z.number(), mae: z.number() }),
]);
export type Metrics = z.infer<typeof MetricsSchema>;

export const TRAINING_RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type TrainingRunStatus = (typeof TRAINING_RUN_STATUSES)[number];

export const EpochProgressSchema = z.object({
  /** 1-based. */
  epoch: z.number(),
  /** Mean training loss over the epoch's batches. */
  loss: z.number(),
  /** Loss on the holdout split after the epoch. */
  holdoutLoss: z.number(),
  metrics: MetricsSchema,
});
export type EpochProgress = z.infer<typeof EpochProgressSchema>;

const ChampionSchema = z.object({
  version: z.number(),
  metrics: MetricsSchema.nullable(),
  reason: z.string().nullable(),
  recentMetrics: MetricsSchema.nullable().optional(),
});

export const TrainingRunSchema = z.object({
  id: z.string(),
  task: z.string(),
  model: z.string(),
  snapshot: z.string(),
  /** The configuration as the job uses it (defaults resolved, kind from the task). */
  config: TrainConfigSchema,
  status: z.enum(TRAINING_RUN_STATUSES),
  createdAt: z.string(),
  createdBy: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  backend: z.string().nullable(),
  /** The latest epoch's figures; `history` has every epoch. */
  progress: EpochProgressSchema.extend({ epochs: z.number() }).nullable(),
  history: z.array(EpochProgressSchema),
  /** Set when the retrain loop started the run. */
  trigger: z
    .object({ retrain: z.string(), kind: z.enum(['drift', 'concept', 'manual']), reason: z.string() })
    .nullable()
    .optional(),
  recentSince: z.string().nullable().optional(),
  result: z
    .object({
      version: z.number(),
      metrics: MetricsSchema,
      champion: ChampionSchema.nullable(),
      recent: z.object({ rows: z.number(), metrics: MetricsSchema }).nullable().optional(),
      bestEpoch: z.number(),
      stoppedEarly: z.boolean(),
      trainRows: z.number(),
      holdoutRows: z.number(),
      parityMaxAbsDiff: z.number(),
      durationMs: z.number(),
    })
    .nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});
export type TrainingRun = z.infer<typeof TrainingRunSchema>;

export const TrainingRunListSchema = z.object({ runs: z.array(TrainingRunSchema) });
