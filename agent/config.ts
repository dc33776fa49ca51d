/**
 * The agent's one configuration schema: key, type, default, one line of doc. Defaults are resolved once at
 * start; the rest of the agent receives a complete `AgentConfig`. What enrollment returned (identity,
 * credentials, pinned keys, profile) lives in `<dataDir>/agent.json`, see enroll.ts.
 */
import { resolve } from 'node:path';
import { z } from 'zod';

export const AGENT_VERSION = '0.1.0';

export const AgentConfigSchema = z.object({
  /** Where the enrollment, the update records and the model slots live. */
  dataDir: z.string().default('./edgefleet-agent-data'),
  /** Local inference API bind address (loopback by default: apps on this device only). */
  apiHost: z.string().default('127.0.0.1'),
  /** Local inference API port (0 picks a free port). */
  apiPort: z.number().int().min(0).max(65535).default(9090),
  /** How often telemetry is published, ms. */
  telemetryIntervalMs: z.number().int().min(100).default(5_000),
  /** Largest manifest document accepted, bytes. */
  maxManifestBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /** Re-entries of one update state (crash recovery) before the update fails with crash_loop. */
  maxStateReentries: z.number().int().min(1).default(3),
  /** How long shutdown waits for an update step under way to finish, ms. */
  shutdownGraceMs: z.number().int().min(0).default(10_000),
  /** Download attempts for transient errors before the update fails. */
  downloadAttempts: z.number().int().min(1).default(5),
  /** Reports kept in memory while the broker is unreachable; the oldest are dropped (and counted) beyond. */
  reportQueueLimit: z.number().int().min(1).default(1000),
  /** Most rows one adaptive inference batch may carry; 1 turns batching off. */
  maxBatchRows: z.number().int().min(1).default(64),
  /** Share of inference requests captured for the fleet's data pool (0..1). */
  sampleRate: z.number().min(0).max(1).default(0.01),
  /** How long a captured request waits for ground truth (feedback) before it is sent unlabeled, ms. */
  feedbackWindowMs: z.number().int().min(0).default(600_000),
  /** Samples per batch sent to the fleet. */
  sampleBatchSize: z.number().int().min(1).max(10_000).default(100),
  /** A batch goes out at the latest when its oldest sample is this old, ms. */
  sampleBatchMaxAgeMs: z.number().int().min(10).default(5_000),
  /** Samples kept while the fleet is unreachable; beyond, the oldest are dropped (and reported). */
  outboxLimit: z.number().int().min(1).default(100_000),
  /** Mirrored requests waiting for a shadowing candidate; beyond, mirrors are dropped (and counted). */
  shadowQueueLimit: z.number().int().min(1).default(64),
  /** Drift monitoring of active models against their signed reference statistics (agent/drift). */
  driftMonitoring: z.boolean().default(true),
  /** Rows that close a drift window. */
  driftWindowSamples: z.number().int().min(10).default(500),
  /** Age that closes a drift window on a quiet device, ms. */
  driftWindowMs: z.number().int().min(100).default(60_000),
  /** Fewest rows a window needs for a verdict (fewer: "insufficient_data"). */
  driftMinSamples: z.number().int().min(10).default(100),
  /** How often drift reports are sent besides at verdict changes, ms. */
  driftReportIntervalMs: z.number().int().min(100).default(30_000),
  /** Requests waiting for the drift monitor; beyond, requests are left out of monitoring (and counted). */
  driftQueueLimit: z.number().int().min(1).default(4096),
  /** Recent requests whose outputs are kept to score feedback for concept drift. */
  driftFeedbackMemory: z.number().int().min(1).default(10_000),
  /** Capture sample rate while drift is detected, so the fleet gets the data to retrain (never below `sampleRate`). */
  driftSampleRate: z.number().min(0).max(1).default(0.25),
  /** Inference latencies kept per model for the telemetry percentiles. */
  latencyWindow: z.number().int().min(16).default(4096),
});
export type AgentConfigInput = z.input<typeof AgentConfigSchema>;
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

export function resolveAgentConfig(input: AgentConfigInput): AgentConfig {
  const config = AgentConfigSchema.parse(input);
  return { ...config, dataDir: resolve(config.dataDir) };
}
