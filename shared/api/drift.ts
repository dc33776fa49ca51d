/**
 * Drift and the retrain loop on the wire: fleet-wide drift per model (by version, cohort, feature and
 * device), one device's latest report, a version's drift over time, retrain policies and retrain records.
 * Pure zod. The retrain policy is both the request of `PUT /tasks/:name/retrain-policy` and part of every
 * retrain record; its canary is the create-rollout request's preset options, narrowed.
 */
import { z } from 'zod';
import { DRIFT_VERDICTS, DriftMessageSchema } from '../protocol/schemas.js';
import { PresetOptionsSchema } from './rollouts.js';

// ---- requests -------------------------------------------------------------------------------------

export const RetrainPolicySchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Share of the devices on the production version that must report drift (0 < share ≤ 1). */
    deviceShare: z.number().gt(0).max(1).default(0.5),
    /** Each of them for at least this long, seconds. */
    forS: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(300),
    /** Also trigger when a device on production reports concept drift (its loss on feedback rose). */
    onConcept: z.boolean().default(true),
    /** Quiet time after a trigger before the next automatic one, seconds. */
    cooldownS: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(3600),
    /** How much better the challenger must be on the primary metric (accuracy points, or RMSE units). */
    margin: z.number().min(0).default(0.01),
    /** `auto`: a winning challenger starts its canary at once; `approve`: it waits for `retrain approve`. */
    mode: z.enum(['auto', 'approve']).default('approve'),
    /**
     * What the retrain learns from: `recent`, the samples captured since the drift began (the world the model
     * must now serve; its reference statistics then describe it, so the drift clears), or `all` of the pool.
     * Without a known drift start (a manual trigger on a quiet fleet), the whole pool.
     */
    trainOn: z.enum(['recent', 'all']).default('recent'),
    /** Labeled samples captured since the drift began that the pool must hold before a drift retrain fires. */
    minNewSamples: z.number().int().min(0).default(200),
    /** Fewest recent holdout rows to judge on them; below, the whole holdout is used. */
    minRecentRows: z.number().int().min(1).default(20),
    /** Training configuration overrides (as `edgefleet train --config`). */
    trainConfig: z.record(z.string(), z.unknown()).optional(),
    /** The canary the winner goes out with (the `canary` preset's options). */
    rollout: PresetOptionsSchema.pick({
      steps: true,
      bakeS: true,
      windowS: true,
      shadowFirst: true,
      gates: true,
    })
      .strict()
      .default({}),
  })
  .strict();
export type RetrainPolicy = z.infer<typeof RetrainPolicySchema>;
export type RetrainPolicyInput = z.input<typeof RetrainPolicySchema>;

/** `POST /tasks/:name/retrain`. */
export const TriggerRetrainRequestSchema = z
  .object({ reason: z.string().min(1).max(500).optional() })
  .strict();

export const DriftQuerySchema = z.object({
  task: z.string().optional(),
  model: z.string().optional(),
  /** `profile`, or `tag:<key>`: also break the latest reports down by that cohort. */
  cohort: z.string().optional(),
});

export const TimelineQuerySchema = z.object({
  sinceS: z.coerce
    .number()
    .int()
    .positive()
    .max(30 * 86_400)
    .default(3600),
  bucketS: z.coerce.number().int().positive().max(86_400).default(60),
});

// ---- responses ------------------------------------------------------------------------------------

/** A device's latest drift report for a model (fleet receive times, ms). */
export const DeviceDriftSchema = z.object({
  deviceId: z.string(),
  model: z.string(),
  version: z.number(),
  verdict: z.enum(DRIFT_VERDICTS),
  /** Fleet time the device's current verdict began (ms). */
  since: z.number(),
  receivedAt: z.number(),
  driftedShare: z.number(),
  samples: z.number(),
  features: z.array(
    z.object({
      name: z.string(),
      psi: z.number(),
      jensenShannon: z.number(),
      pValue: z.number(),
      drifted: z.boolean(),
    }),
  ),
  prediction: DriftMessageSchema.shape.prediction,
  concept: DriftMessageSchema.shape.concept,
  /** Concept drift reported and not yet followed by a report without it (fleet time it began). */
  conceptSince: z.number().nullable(),
  captureRate: z.number(),
});
export type DeviceDrift = z.infer<typeof DeviceDriftSchema>;

/** The latest reports of one version's devices, counted. */
export const VersionDriftSchema = z.object({
  version: z.number(),
  devices: z.number(),
  drifting: z.number(),
  noDrift: z.number(),
  insufficient: z.number(),
  /** Drifting devices over devices with a verdict (null when none has one). */
  share: z.number().nullable(),
  predictionDrifting: z.number(),
  conceptDrifting: z.number(),
  features: z.array(z.object({ name: z.string(), drifting: z.number(), meanPsi: z.number() })),
});
export type VersionDrift = z.infer<typeof VersionDriftSchema>;

export const RETRAIN_STATUSES = [
  'training',
  /** The challenger won; the `candidate` alias is being moved to it. */
  'setting_candidate',
  'awaiting_approval',
  /** The canary's id is fixed (`rollout`); the rollout is being created under it. */
  'creating_rollout',
  'rolling_out',
  'completed',
  'rollout_failed',
  'rejected',
  'failed',
] as const;
export type RetrainStatus = (typeof RETRAIN_STATUSES)[number];

export const RetrainSchema = z.object({
  id: z.string(),
  task: z.string(),
  model: z.string(),
  trigger: z.object({
    kind: z.enum(['drift', 'concept', 'manual']),
    reason: z.string(),
    actor: z.string(),
    /** Drift triggers: the production version, the devices drifting and the share they make. */
    production: z.number().nullable(),
    devices: z.array(z.string()),
    share: z.number().nullable(),
    /** When the drift began; "recent" data is from then. */
    driftSince: z.string().nullable(),
  }),
  status: z.enum(RETRAIN_STATUSES),
  createdAt: z.string(),
  updatedAt: z.string(),
  policy: RetrainPolicySchema,
  snapshot: z.string().nullable(),
  run: z.string().nullable(),
  version: z.number().nullable(),
  evaluation: z
    .object({
      metric: z.enum(['accuracy', 'rmse']),
      on: z.enum(['recent_holdout', 'holdout']),
      rows: z.number(),
      challenger: z.number(),
      champion: z.number().nullable(),
      championVersion: z.number().nullable(),
      margin: z.number(),
      won: z.boolean(),
      detail: z.string(),
    })
    .nullable(),
  rollout: z.string().nullable(),
  approvedBy: z.string().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  events: z.array(z.object({ at: z.string(), step: z.string(), message: z.string() })),
});
export type Retrain = z.infer<typeof RetrainSchema>;

export const RetrainListSchema = z.object({ retrains: z.array(RetrainSchema) });

export const StoredPolicySchema = z.object({
  task: z.string(),
  policy: RetrainPolicySchema,
  updatedAt: z.string(),
  updatedBy: z.string(),
});
export type StoredPolicy = z.infer<typeof StoredPolicySchema>;

/** `GET /drift`: per model. */
export const ModelDriftSchema = z.object({
  model: z.string(),
  task: z.string().nullable(),
  production: z.number().nullable(),
  candidate: z.number().nullable(),
  versions: z.array(VersionDriftSchema),
  /** With `?cohort=`: the same counts per version and cohort. */
  cohorts: z.array(VersionDriftSchema.extend({ cohort: z.string() })).optional(),
  devices: z.array(DeviceDriftSchema),
  retrain: RetrainSchema.nullable(),
});
export type ModelDrift = z.infer<typeof ModelDriftSchema>;

export const DriftOverviewSchema = z.object({ models: z.array(ModelDriftSchema) });
export type DriftOverview = z.infer<typeof DriftOverviewSchema>;

export const TimelinePointSchema = z.object({
  at: z.number(),
  reports: z.number(),
  drifting: z.number(),
  /** Drifting reports over reports with a verdict in the bucket. */
  share: z.number().nullable(),
  /** Mean PSI per feature in the bucket. */
  psi: z.record(z.string(), z.number()),
});
export type TimelinePoint = z.infer<typeof TimelinePointSchema>;

export const DriftTimelineSchema = z.object({
  model: z.string(),
  version: z.number(),
  bucketS: z.number(),
  points: z.array(TimelinePointSchema),
});
export type DriftTimeline = z.infer<typeof DriftTimelineSchema>;
