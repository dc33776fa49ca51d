/**
 * The MQTT wire protocol's schemas: every message a member of one tagged union (`MessageSchema`), in a
 * versioned envelope `{ v, type, id, ts, ... }`. Pure zod, no Buffer: the HTTP wire contract (shared/api/)
 * and the browser console's types name these without Node. messages.ts re-exports all of it beside
 * `parseMessage` and `encodeMessage`.
 */
import { z } from 'zod';
import { ModelNameSchema } from '../manifest-schema.js';

export const PROTOCOL_VERSION = 1;

const envelope = {
  v: z.literal(PROTOCOL_VERSION),
  /** Unique message id (UUID); commands are idempotent by id on the device. */
  id: z.string().min(1).max(64),
  /** Sender's clock, ms since epoch. */
  ts: z.number().int().nonnegative(),
};

export const ModelRefSchema = z.object({ name: ModelNameSchema, version: z.number().int().positive() });
export type ModelRef = z.infer<typeof ModelRefSchema>;

export const ReasonSchema = z.object({ code: z.string().min(1).max(64), message: z.string().max(2000) });
export type Reason = z.infer<typeof ReasonSchema>;

// ---- fleet → device -------------------------------------------------------------------------------

export const InstallCommandSchema = z.object({
  ...envelope,
  type: z.literal('install'),
  rolloutId: z.string().min(1).max(64),
  /** The signed manifest as its raw JSON text, so the device checks the size limit before parsing. */
  manifest: z.string().min(2),
  /** Where to download the artifact (the fleet's `/api/v1/artifacts/{sha256}`). */
  artifactUrl: z.url(),
  /**
   * `activate`: switch to the new model as soon as it passes its self-test. `shadow`: load it beside the
   * active model, mirror `shadowPercent` of live requests to it off the response path, report agreement and
   * latency in telemetry, and wait in state `shadowing` for an `activate` or a `rollback` command.
   */
  mode: z.enum(['activate', 'shadow']).default('activate'),
  shadowPercent: z.number().min(0).max(100).default(100),
});
export type InstallCommand = z.infer<typeof InstallCommandSchema>;

/** Switch to the candidate `model` that is shadowing on the device (a blue-green switch). Idempotent by id. */
export const ActivateCommandSchema = z.object({
  ...envelope,
  type: z.literal('activate'),
  rolloutId: z.string().min(1).max(64),
  model: ModelRefSchema,
});
export type ActivateCommand = z.infer<typeof ActivateCommandSchema>;

/**
 * Leave `model`: when it is active, switch back to the model in the other slot (no download); when it is
 * staged or shadowing, discard it. The reason is recorded by the device and reported. Idempotent by id.
 */
export const RollbackCommandSchema = z.object({
  ...envelope,
  type: z.literal('rollback'),
  rolloutId: z.string().min(1).max(64),
  model: ModelRefSchema,
  reason: ReasonSchema,
});
export type RollbackCommand = z.infer<typeof RollbackCommandSchema>;

export type Command = InstallCommand | ActivateCommand | RollbackCommand;

// ---- device → fleet -------------------------------------------------------------------------------

export const ActiveModelSchema = ModelRefSchema.extend({
  executionProvider: z.string().max(32),
  /** The profile's providers tried before `executionProvider`, with why each did not load (CUDA missing…). */
  providersSkipped: z
    .array(z.object({ provider: z.string().max(32), reason: z.string().max(300) }))
    .max(8)
    .optional(),
});
export type ActiveModel = z.infer<typeof ActiveModelSchema>;

/** Retained on `status`; the broker publishes the `online: false` form as the device's last will. */
export const StatusMessageSchema = z.object({
  ...envelope,
  type: z.literal('status'),
  online: z.boolean(),
  agentVersion: z.string().max(64).optional(),
  models: z.array(ActiveModelSchema).max(64).default([]),
});
export type StatusMessage = z.infer<typeof StatusMessageSchema>;

export const UPDATE_STATES = [
  'received',
  'downloading',
  'verifying',
  'staged',
  'loading',
  'activating',
  /** Shadow mode: loaded beside the active model, mirroring traffic, waiting for activate or rollback. */
  'shadowing',
  'active',
  'failed',
  /** Left on a rollback command: the previous model serves again (or the candidate was discarded). */
  'rolled_back',
] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];
export const TERMINAL_UPDATE_STATES: readonly UpdateState[] = ['active', 'failed', 'rolled_back'];

export const UpdateMessageSchema = z.object({
  ...envelope,
  type: z.literal('update'),
  /** The command this reports on: the install (its whole life, activation included) or a rollback. */
  commandId: z.string().min(1).max(64),
  rolloutId: z.string().min(1).max(64),
  model: ModelRefSchema,
  state: z.enum(UPDATE_STATES),
  /** Why it failed (failed), or a note on a recovery (e.g. resumed after restart). */
  reason: ReasonSchema.nullable().default(null),
  executionProvider: z.string().max(32).nullable().default(null),
  /** The version still serving after a failure (the previous model keeps serving). */
  serving: ModelRefSchema.nullable().default(null),
});
export type UpdateMessage = z.infer<typeof UpdateMessageSchema>;

export const LatencySchema = z.object({
  p50: z.number().nonnegative(),
  p95: z.number().nonnegative(),
  p99: z.number().nonnegative(),
});

/**
 * A window of shadow comparison: live requests of `active` mirrored to `candidate` off the response path.
 * Agreement: same top-1 class per row (classifiers: last output dimension > 1), or every output within
 * `|a − c| ≤ 1e-3 + 1e-2·|a|` (regressors). A request agrees when all its rows agree.
 */
export const ShadowStatsSchema = z.object({
  active: ModelRefSchema,
  candidate: ModelRefSchema,
  /** Requests chosen for mirroring (the sampled share). */
  mirrored: z.number().int().nonnegative(),
  /** Mirrored requests that were compared (the rest were dropped or failed). */
  compared: z.number().int().nonnegative(),
  agreed: z.number().int().nonnegative(),
  /** Dropped because the shadow queue was full: the active path is never slowed to make room. */
  dropped: z.number().int().nonnegative(),
  /** The candidate failed on a request the active model answered. */
  errors: z.number().int().nonnegative(),
  /** Latency of each model on the compared requests, as histogram buckets (shared/histogram.ts). */
  activeLatencyBuckets: z.array(z.number().int().nonnegative()).max(256),
  candidateLatencyBuckets: z.array(z.number().int().nonnegative()).max(256),
});
export type ShadowStats = z.infer<typeof ShadowStatsSchema>;

export const TelemetryMessageSchema = z.object({
  ...envelope,
  type: z.literal('telemetry'),
  /** Length of the window these counters cover, ms. */
  windowMs: z.number().int().positive(),
  models: z
    .array(
      ActiveModelSchema.extend({
        requests: z.number().int().nonnegative(),
        errors: z.number().int().nonnegative(),
        /** Inference latency over the window, ms; zeros when there were no requests. */
        latencyMs: LatencySchema,
        /** The same latencies as counts per bucket of shared/histogram.ts (mergeable across devices). */
        latencyBuckets: z.array(z.number().int().nonnegative()).max(256).optional(),
      }),
    )
    .max(64),
  /** Shadow comparisons over the window, one per candidate shadowing on the device. */
  shadow: z.array(ShadowStatsSchema).max(16).optional(),
  process: z.object({
    rssBytes: z.number().nonnegative(),
    heapUsedBytes: z.number().nonnegative(),
    /** CPU time over wall time in the window, in percent of one core. */
    cpuPercent: z.number().nonnegative(),
    uptimeS: z.number().nonnegative(),
  }),
  device: z.object({
    loadAvg1: z.number().nonnegative(),
    freeMemBytes: z.number().nonnegative(),
    totalMemBytes: z.number().nonnegative(),
  }),
});
export type TelemetryMessage = z.infer<typeof TelemetryMessageSchema>;

/** One feature's drift test over a window (shared/drift/verdict.ts). */
export const FeatureDriftSchema = z.object({
  name: z.string().min(1).max(128),
  ksStatistic: z.number().min(0).max(1),
  pValue: z.number().min(0).max(1),
  /** After the multiple-comparison correction across features. */
  adjustedPValue: z.number().min(0).max(1),
  psi: z.number().nonnegative(),
  jensenShannon: z.number().min(0).max(1),
  drifted: z.boolean(),
});
export type FeatureDriftReport = z.infer<typeof FeatureDriftSchema>;

export const DRIFT_VERDICTS = ['drift', 'no_drift', 'insufficient_data'] as const;
export type DriftVerdictName = (typeof DRIFT_VERDICTS)[number];

/**
 * A device's drift report for one active model, over its latest closed window: the dataset verdict from the
 * per-feature tests against the reference statistics signed into the manifest, prediction drift on the
 * output distribution, and concept drift on the per-request loss of requests the app sent ground truth for.
 * Sent on the telemetry channel on a schedule and at every verdict change.
 */
export const DriftMessageSchema = z.object({
  ...envelope,
  type: z.literal('drift'),
  model: ModelRefSchema,
  /** Why this report was sent now. */
  cause: z.enum(['schedule', 'verdict_change']),
  verdict: z.enum(DRIFT_VERDICTS),
  /** When the device's current verdict began (ms since epoch, device clock). */
  verdictSince: z.number().int().nonnegative(),
  /** The window the verdict comes from (the latest closed one; null before any closed). */
  window: z
    .object({
      startedAt: z.number().int().nonnegative(),
      endedAt: z.number().int().nonnegative(),
      samples: z.number().int().nonnegative(),
      /** What closed it: the count limit, or the time limit. */
      closedBy: z.enum(['count', 'time']),
    })
    .nullable(),
  /** Share of features that drifted (0 when insufficient data). */
  driftedShare: z.number().min(0).max(1),
  features: z.array(FeatureDriftSchema).max(1024),
  prediction: z
    .object({
      test: z.enum(['chi2', 'ks']),
      statistic: z.number().nonnegative(),
      pValue: z.number().min(0).max(1),
      psi: z.number().nonnegative(),
      jensenShannon: z.number().min(0).max(1),
      drifted: z.boolean(),
    })
    .nullable(),
  /** Concept drift on feedback: loss per labeled request, watched by Page–Hinkley and ADWIN. */
  concept: z.object({
    /** Labeled requests seen since the model became active. */
    labeled: z.number().int().nonnegative(),
    /** Mean loss over ADWIN's current window (null before any label). */
    meanLoss: z.number().nonnegative().nullable(),
    /** Either detector fired since the previous report. */
    drifted: z.boolean(),
    detections: z.object({
      pageHinkley: z.number().int().nonnegative(),
      adwin: z.number().int().nonnegative(),
    }),
  }),
  /** Requests the monitor could not absorb because its queue was full (cost stays bounded), since the last report. */
  dropped: z.number().int().nonnegative(),
  /** The capture sample rate in force (it rises while drift is detected). */
  captureRate: z.number().min(0).max(1),
});
export type DriftMessage = z.infer<typeof DriftMessageSchema>;

/**
 * Any JS number, Infinity included (JSON's 1e999 parses to it). Sample values are judged one by one by the
 * pool's validation, which refuses and counts non-finite ones; the schema must not throw the batch away.
 */
const AnyNumber = z.custom<number>((v) => typeof v === 'number', 'expected a number');
/**
 * An array of such numbers, checked in one loop rather than one schema run per element: batches carry
 * hundreds of thousands of numbers, and this check is the hot path of ingestion.
 */
function isNumberArray(v: unknown): v is number[] {
  if (!Array.isArray(v) || v.length > 65_536) return false;
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'number') return false;
  return true;
}
const NumberArray = z.custom<number[]>(isNumberArray, 'expected an array of at most 65536 numbers');

/** One captured inference for the data pool: the model's input row, its output, and ground truth if known. */
export const CapturedSampleSchema = z.object({
  /** Unique on the device: `<requestId>` or `<requestId>:<row>`. */
  id: z.string().min(1).max(160),
  features: NumberArray,
  output: NumberArray,
  label: z.union([z.string().max(128), AnyNumber]).nullable(),
  ts: z.number().int().nonnegative(),
});
export type CapturedSample = z.infer<typeof CapturedSampleSchema>;

/** A batch of captured samples (sent gzip-compressed on the `samples` channel). */
export const SamplesMessageSchema = z.object({
  ...envelope,
  type: z.literal('samples'),
  model: ModelRefSchema,
  samples: z.array(CapturedSampleSchema).min(1).max(100_000),
  /** Samples the device had to drop (outbox full) since its last batch, oldest first. */
  dropped: z.number().int().nonnegative().default(0),
});
export type SamplesMessage = z.infer<typeof SamplesMessageSchema>;

const SAMPLES_SHAPE_KEYS = Object.keys(SamplesMessageSchema.shape);
const SamplesEnvelopeSchema = SamplesMessageSchema.omit({ samples: true });

/**
 * `SamplesMessageSchema` checked by hand for the plain values `JSON.parse` makes: ingestion's hot path,
 * where running the schema over every captured sample costs more than the rest of the check. Returns exactly
 * what the schema returns (same values, same keys in the same order; property-tested against it), or
 * `undefined` for anything it does not accept, in which case the caller runs the schema, which gives the
 * verdict and says what is wrong. So it can make acceptance cheaper but never change a verdict.
 * The envelope (everything but `samples`) still goes through zod.
 */
export function parseSamplesFast(value: Record<string, unknown>): SamplesMessage | undefined {
  const samples = value.samples;
  if (!Array.isArray(samples) || samples.length < 1 || samples.length > 100_000) return undefined;
  const envelope = SamplesEnvelopeSchema.safeParse(value);
  if (!envelope.success) return undefined;
  const checked: CapturedSample[] = new Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s: unknown = samples[i];
    if (typeof s !== 'object' || s === null || Array.isArray(s)) return undefined;
    const { id, features, output, label, ts } = s as Record<string, unknown>;
    if (typeof id !== 'string' || id.length < 1 || id.length > 160) return undefined;
    if (!isNumberArray(features) || !isNumberArray(output)) return undefined;
    if (label !== null && typeof label !== 'number' && !(typeof label === 'string' && label.length <= 128))
      return undefined;
    if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) return undefined;
    // A new object with the schema's keys only, in its order: zod strips unknown keys the same way.
    checked[i] = { id, features, output, label, ts };
  }
  const data: Record<string, unknown> = envelope.data;
  const message: Record<string, unknown> = {};
  for (const key of SAMPLES_SHAPE_KEYS) {
    if (key === 'samples') message[key] = checked;
    else if (key in data) message[key] = data[key];
  }
  return message as SamplesMessage;
}

export const MessageSchema = z.discriminatedUnion('type', [
  InstallCommandSchema,
  ActivateCommandSchema,
  RollbackCommandSchema,
  StatusMessageSchema,
  UpdateMessageSchema,
  TelemetryMessageSchema,
  DriftMessageSchema,
  SamplesMessageSchema,
]);
export type Message = z.infer<typeof MessageSchema>;
export type MessageType = Message['type'];
