/**
 * The reads the console is built on, on the wire: the fleet overview, one device's telemetry windows and
 * update history, and the health check. Pure zod; each answers one screen in one request.
 */
import { z } from 'zod';
import { ModelRefSchema, ReasonSchema } from '../protocol/schemas.js';
import { AuditEventSchema } from './audit.js';
import { DEVICE_ROLLOUT_STATES, ROLLOUT_PHASES } from './rollouts.js';

// ---- requests -------------------------------------------------------------------------------------

export const TelemetryQuerySchema = z.object({
  /** Windows received at or after this time (ms since epoch); the last hour when absent. */
  sinceMs: z.coerce.number().int().nonnegative().optional(),
});

// ---- responses ------------------------------------------------------------------------------------

/** `GET /health`: public; the broker URL lets `edgefleet-agent doctor` check reachability before enrolling. */
export const HealthSchema = z.object({ ok: z.boolean(), version: z.string(), mqttUrl: z.string() });
export type Health = z.infer<typeof HealthSchema>;

/** A rollout in a line: the overview's active and recent lists. */
export const RolloutBriefSchema = z.object({
  id: z.string(),
  model: ModelRefSchema,
  phase: z.enum(ROLLOUT_PHASES),
  step: z.number(),
  steps: z.number(),
  createdAt: z.string(),
});
export type RolloutBrief = z.infer<typeof RolloutBriefSchema>;

export const OverviewSchema = z.object({
  devices: z.object({ total: z.number(), online: z.number(), offline: z.number(), neverSeen: z.number() }),
  /** Every known profile (busiest first), with its device count. */
  profiles: z.array(z.object({ profile: z.string(), devices: z.number() })),
  /** Model versions devices run, with how many run each. */
  versions: z.array(z.object({ model: z.string(), version: z.number(), devices: z.number() })),
  rollouts: z.object({ active: z.array(RolloutBriefSchema), recent: z.array(RolloutBriefSchema) }),
  /** Versions with at least one device whose latest report says drift. */
  drift: z.object({
    alerts: z.array(
      z.object({
        model: z.string(),
        version: z.number(),
        devicesDrifted: z.number(),
        devicesReporting: z.number(),
      }),
    ),
  }),
  training: z.object({ running: z.number() }),
  events: z.array(AuditEventSchema),
});
export type Overview = z.infer<typeof OverviewSchema>;

/** One telemetry window as the console charts it: summed over models, quantiles of the merged histograms. */
export const TelemetryPointSchema = z.object({
  at: z.string(),
  windowMs: z.number(),
  requests: z.number(),
  errors: z.number(),
  p50Ms: z.number().nullable(),
  p99Ms: z.number().nullable(),
  rps: z.number(),
  cpuPercent: z.number().nullable(),
  rssBytes: z.number().nullable(),
  heapUsedBytes: z.number().nullable(),
  loadAvg1: z.number().nullable(),
  freeMemBytes: z.number().nullable(),
  totalMemBytes: z.number().nullable(),
});
export type TelemetryPoint = z.infer<typeof TelemetryPointSchema>;

export const DeviceTelemetrySchema = z.object({ windows: z.array(TelemetryPointSchema) });
export type DeviceTelemetry = z.infer<typeof DeviceTelemetrySchema>;

/** A rollout that targets the device, with the device's state in it. */
export const DeviceUpdateSchema = z.object({
  rolloutId: z.string(),
  model: ModelRefSchema,
  phase: z.enum(ROLLOUT_PHASES),
  state: z.enum(DEVICE_ROLLOUT_STATES),
  mode: z.enum(['activate', 'shadow']).nullable(),
  reason: ReasonSchema.nullable(),
  executionProvider: z.string().nullable(),
  updatedAt: z.string(),
});
export type DeviceUpdate = z.infer<typeof DeviceUpdateSchema>;

export const DeviceUpdatesSchema = z.object({ updates: z.array(DeviceUpdateSchema) });
export type DeviceUpdates = z.infer<typeof DeviceUpdatesSchema>;
