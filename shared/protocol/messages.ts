/**
 * The MQTT wire protocol: every message is a member of one tagged union, in a versioned envelope
 * `{ v, type, id, ts, ... }`, parsed by `parseMessage`. Payloads are UTF-8 JSON.
 * Adding a message: add its schema to `MessageSchema`; the exhaustive switches on `type` then tell you
 * every place that must handle it.
 */
import { z } from 'zod';
import { ModelNameSchema } from '../manifest.js';

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
});
export type InstallCommand = z.infer<typeof InstallCommandSchema>;

// ---- device → fleet -------------------------------------------------------------------------------

export const ActiveModelSchema = ModelRefSchema.extend({
  executionProvider: z.string().max(32),
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
  'active',
  'failed',
] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];
export const TERMINAL_UPDATE_STATES: readonly UpdateState[] = ['active', 'failed'];

export const UpdateMessageSchema = z.object({
  ...envelope,
  type: z.literal('update'),
  /** The install command this reports on. */
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
      }),
    )
    .max(64),
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

/**
 * Any JS number, Infinity included (JSON's 1e999 parses to it). Sample values are judged one by one by the
 * pool's validation, which refuses and counts non-finite ones; the schema must not throw the batch away.
 */
const AnyNumber = z.custom<number>((v) => typeof v === 'number', 'expected a number');

/** One captured inference for the data pool: the model's input row, its output, and ground truth if known. */
export const CapturedSampleSchema = z.object({
  /** Unique on the device: `<requestId>` or `<requestId>:<row>`. */
  id: z.string().min(1).max(160),
  features: z.array(AnyNumber).max(65_536),
  output: z.array(AnyNumber).max(65_536),
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

export const MessageSchema = z.discriminatedUnion('type', [
  InstallCommandSchema,
  StatusMessageSchema,
  UpdateMessageSchema,
  TelemetryMessageSchema,
  SamplesMessageSchema,
]);
export type Message = z.infer<typeof MessageSchema>;
export type MessageType = Message['type'];

export type ParseResult = { ok: true; message: Message } | { ok: false; reason: string };

/** Parse any payload (Buffer, string or value) into a protocol message, or say precisely why not. */
export function parseMessage(payload: unknown, maxBytes = 1024 * 1024): ParseResult {
  let value: unknown = payload;
  if (Buffer.isBuffer(payload) || typeof payload === 'string') {
    const size = Buffer.isBuffer(payload) ? payload.length : Buffer.byteLength(payload);
    if (size > maxBytes) return { ok: false, reason: `message is ${size} bytes, the limit is ${maxBytes}` };
    try {
      value = JSON.parse(payload.toString());
    } catch (err) {
      return { ok: false, reason: `not JSON: ${(err as Error).message}` };
    }
  }
  const parsed = MessageSchema.safeParse(value);
  if (!parsed.success) return { ok: false, reason: z.prettifyError(parsed.error).replaceAll('\n', '; ') };
  return { ok: true, message: parsed.data };
}

/** Serialize a message for publishing. */
export function encodeMessage(message: Message): Buffer {
  return Buffer.from(JSON.stringify(message));
}

export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(value)}`);
}
