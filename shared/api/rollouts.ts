/**
 * Rollouts on the wire: the spec a client sends (steps, gates, preset options) and the rollout the fleet
 * answers with (spec, status, devices, and what it derives on read: phase, percent, summary, actions).
 * Pure zod. The spec schemas are also what the fleet validates and stores (fleet-server/rollouts/spec.ts
 * builds presets from them); the response schema is the contract the CLI and the console read, mapped from
 * the stored record by the routes, so a stored field reaches clients only once it is declared here.
 */
import { z } from 'zod';
import { ModelNameSchema } from '../manifest-schema.js';
import { ModelRefSchema, ReasonSchema, UPDATE_STATES } from '../protocol/schemas.js';
import { ALIASES } from './common.js';

export const GATE_METRICS = [
  /** Cohort devices whose install failed, over cohort devices that finished. Absolute. */
  'activation_failure_share',
  /** Canary inference error rate minus the control cohort's (both on the same window). */
  'error_rate',
  /** Canary p95 latency over control p95 (merged histograms). In a shadow step: candidate over active. */
  'p95_latency_ratio',
  /** Share of canary devices whose latest drift report on the new version (in the window) says drift. */
  'drift_share',
  /** Compared shadow requests whose outputs agreed. */
  'shadow_agreement',
] as const;
export type GateMetric = (typeof GATE_METRICS)[number];

/** Which way each metric must go to pass. */
export const GATE_DIRECTION: Record<GateMetric, '<=' | '>='> = {
  activation_failure_share: '<=',
  error_rate: '<=',
  p95_latency_ratio: '<=',
  drift_share: '<=',
  shadow_agreement: '>=',
};

export const GateSchema = z
  .object({
    metric: z.enum(GATE_METRICS),
    /** Pass when `value <= threshold` (or `>=` for shadow_agreement). */
    threshold: z.number().finite(),
    /**
     * Fewest observations for a verdict: finished cohort devices (activation_failure_share), requests on
     * each side (error_rate, p95_latency_ratio), compared requests (shadow_agreement), reporting devices
     * (drift_share). Below it the gate is inconclusive.
     */
    minSamples: z.number().int().nonnegative(),
    /** Failed measurements tolerated within one analysis; one more fails the gate. */
    failureLimit: z.number().int().nonnegative().default(0),
  })
  .strict();
export type Gate = z.infer<typeof GateSchema>;
export type GateInput = z.input<typeof GateSchema>;

/**
 * The standard canary gates. The latency ratio's default of 2 is deliberate: device histograms resolve
 * latency in steps of about 1.5x, and one canary device's p95 against the control's moves by a step under
 * ordinary load, so a tighter default would stop good versions; a 5x slower one fails it by far.
 */
export const DEFAULT_GATES: Gate[] = [
  { metric: 'activation_failure_share', threshold: 0, minSamples: 1, failureLimit: 0 },
  { metric: 'error_rate', threshold: 0.01, minSamples: 50, failureLimit: 0 },
  { metric: 'p95_latency_ratio', threshold: 2, minSamples: 50, failureLimit: 0 },
];

export const StepSchema = z.union([
  z.object({ setPercent: z.number().int().min(1).max(100) }).strict(),
  z
    .object({
      pause: z
        .object({
          durationS: z
            .number()
            .int()
            .positive()
            .max(30 * 86_400)
            .optional(),
        })
        .strict(),
    })
    .strict(),
  z
    .object({
      analysis: z
        .object({
          /** Default: the rollout's gates. */
          gates: z.array(GateSchema).min(1).max(16).optional(),
          windowS: z.number().int().positive().max(86_400).default(60),
          intervalS: z.number().int().positive().max(3600).default(10),
        })
        .strict(),
    })
    .strict(),
  z
    .object({
      shadow: z
        .object({
          /** Share of each device's live requests mirrored to the candidate. */
          percent: z.number().min(1).max(100).default(100),
          /** Which targets shadow: the first ⌈cohortPercent%⌉ in cohort order (100: all, as blue-green). */
          cohortPercent: z.number().int().min(1).max(100).default(100),
          durationS: z.number().int().positive().max(86_400).default(60),
          /** Shorthand for the shadow_agreement gate's threshold. */
          minAgreement: z.number().min(0).max(1).default(0.95),
          gates: z.array(GateSchema).min(1).max(16).optional(),
          intervalS: z.number().int().positive().max(3600).default(10),
        })
        .strict(),
    })
    .strict(),
]);
export type Step = z.infer<typeof StepSchema>;
export type StepInput = z.input<typeof StepSchema>;

export const STRATEGIES = ['all-at-once', 'canary', 'blue-green', 'custom'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const RolloutSpecSchema = z
  .object({
    strategy: z.enum(STRATEGIES),
    steps: z.array(StepSchema).min(1).max(64),
    /** Gates of analysis steps that name none. */
    gates: z.array(GateSchema).min(1).max(16).default(DEFAULT_GATES),
    /** How long a device may take to finish an install (it may be offline) before `onDeviceTimeout`. */
    deviceTimeoutS: z
      .number()
      .int()
      .positive()
      .max(30 * 86_400)
      .default(900),
    onDeviceTimeout: z.enum(['fail', 'skip']).default('fail'),
  })
  .strict()
  .refine((s) => s.steps.some((step) => 'setPercent' in step && step.setPercent === 100), {
    message: 'a rollout must end with every target on the new version: add setPercent 100',
  });
export type RolloutSpec = z.infer<typeof RolloutSpecSchema>;

/**
 * A preset strategy's options as a client gives them (the create-rollout request, a retrain policy's
 * canary): the one schema of them, so every door accepts the same limits.
 */
export const PresetOptionsSchema = z.object({
  /** Canary percentages, increasing, ending at 100 (default 5, 25, 100). */
  steps: z.array(z.number().int().min(1).max(100)).min(1).max(20).optional(),
  /** A pause before each canary analysis, seconds (0: none). */
  bakeS: z
    .number()
    .int()
    .min(0)
    .max(30 * 86_400)
    .optional(),
  /** Gates replacing the defaults: objects, or expressions such as `p95_latency_ratio<=1.2`. */
  gates: z
    .array(z.union([z.string().max(200), GateSchema]))
    .min(1)
    .max(16)
    .optional(),
  /** Canary analysis window, or blue-green shadow duration, seconds. */
  windowS: z.number().int().positive().max(86_400).optional(),
  shadowPercent: z.number().min(1).max(100).optional(),
  /** Canary: shadow on the first cohort before serving (default true). */
  shadowFirst: z.boolean().optional(),
  minAgreement: z.number().min(0).max(1).optional(),
  deviceTimeoutS: z
    .number()
    .int()
    .positive()
    .max(30 * 86_400)
    .optional(),
  onDeviceTimeout: z.enum(['fail', 'skip']).optional(),
});
export type PresetOptionsInput = z.input<typeof PresetOptionsSchema>;

// ---- requests -------------------------------------------------------------------------------------

export const CreateRolloutRequestSchema = z
  .object({
    /** A version number, or an alias resolved when the rollout is created (the rollout records the number). */
    model: z.object({
      name: ModelNameSchema,
      version: z.union([z.number().int().positive(), z.enum(ALIASES)]),
    }),
    targets: z
      .object({
        devices: z.array(z.string().min(1).max(64)).max(100_000).optional(),
        tags: z.record(z.string(), z.string()).optional(),
      })
      .refine((t) => (t.devices?.length ?? 0) > 0 || Object.keys(t.tags ?? {}).length > 0, {
        message: 'targets need device ids or tags',
      }),
    strategy: z.enum(STRATEGIES).default('all-at-once'),
    ...PresetOptionsSchema.shape,
    /** The whole spec, for strategy `custom`. */
    spec: z.unknown().optional(),
  })
  .strict();
export type CreateRolloutRequest = z.input<typeof CreateRolloutRequestSchema>;

/** The body of pause, resume, abort, rollback and promote. */
export const RolloutActionRequestSchema = z
  .object({ reason: z.string().min(1).max(500).optional() })
  .strict();
export type RolloutActionRequest = z.input<typeof RolloutActionRequestSchema>;

// ---- responses ------------------------------------------------------------------------------------

export const ROLLOUT_PHASES = [
  'progressing',
  'paused',
  'succeeded',
  'failed',
  'aborted',
  'rolled_back',
] as const;
export type RolloutPhase = (typeof ROLLOUT_PHASES)[number];

export const DEVICE_ROLLOUT_STATES = ['waiting', 'pending', 'skipped', ...UPDATE_STATES] as const;
export type DeviceRolloutState = (typeof DEVICE_ROLLOUT_STATES)[number];

export const VERDICTS = ['passed', 'inconclusive', 'failed'] as const;

export const GateResultSchema = z.object({
  metric: z.enum(GATE_METRICS),
  direction: z.enum(['<=', '>=']),
  threshold: z.number(),
  /** The measured value, null when it could not be computed. */
  value: z.number().nullable(),
  samples: z.number(),
  minSamples: z.number(),
  verdict: z.enum(VERDICTS),
  detail: z.string(),
});
export type GateResult = z.infer<typeof GateResultSchema>;

export const MeasurementSchema = z.object({
  at: z.string(),
  verdict: z.enum(VERDICTS),
  gates: z.array(GateResultSchema),
});
export type Measurement = z.infer<typeof MeasurementSchema>;

export const RolloutEventSchema = z.object({ at: z.string(), type: z.string(), message: z.string() });

export const RolloutStatusSchema = z.object({
  phase: z.enum(ROLLOUT_PHASES),
  /** Index into spec.steps; equals steps.length once every step is done. */
  step: z.number().int().nonnegative(),
  stepStartedAt: z.string(),
  pause: z
    .object({
      kind: z.enum(['operator', 'step', 'inconclusive']),
      reason: ReasonSchema,
      at: z.string(),
      by: z.string(),
    })
    .nullable(),
  /** The running analysis (or shadow measurement) of the current step. */
  analysis: z
    .object({
      step: z.number().int().nonnegative(),
      startedAt: z.string(),
      lastAt: z.string().nullable(),
      failures: z.partialRecord(z.string(), z.number()),
      /** The latest measurements, newest last (bounded). */
      measurements: z.array(MeasurementSchema),
    })
    .nullable(),
  abort: z.object({ reason: ReasonSchema, by: z.string(), at: z.string() }).nullable(),
  /** The latest measurement of each step that measured gates, in step order. */
  measured: z.array(MeasurementSchema.extend({ step: z.number().int().nonnegative() })).optional(),
  /** What happened, newest last (bounded). */
  events: z.array(RolloutEventSchema),
  updatedAt: z.string(),
});
export type RolloutStatus = z.infer<typeof RolloutStatusSchema>;

export const RolloutDeviceSchema = z.object({
  deviceId: z.string(),
  /** Position in the cohort order (0 first). */
  rank: z.number().int().nonnegative(),
  state: z.enum(DEVICE_ROLLOUT_STATES),
  commandId: z.string().nullable(),
  mode: z.enum(['activate', 'shadow']).nullable(),
  shadowPercent: z.number().nullable(),
  activateId: z.string().nullable(),
  rollbackId: z.string().nullable(),
  /** Why it failed, was skipped or rolled back. */
  reason: ReasonSchema.nullable(),
  executionProvider: z.string().nullable(),
  /** The variant of the version this device installs. */
  variant: z.string().optional(),
  /** When the latest command (or its latest re-send) went out. */
  sentAt: z.string().nullable(),
  /** When the current command was first issued (the device timeout counts from here). */
  issuedAt: z.string().nullable().optional(),
  updatedAt: z.string(),
});
export type RolloutDevice = z.infer<typeof RolloutDeviceSchema>;

export const RolloutTargetsSchema = z.object({
  devices: z.array(z.string()).optional(),
  tags: z.record(z.string(), z.string()).optional(),
});
export type RolloutTargets = z.infer<typeof RolloutTargetsSchema>;

export const RolloutSummarySchema = z.object({
  total: z.number().int(),
  waiting: z.number().int(),
  pending: z.number().int(),
  inProgress: z.number().int(),
  shadowing: z.number().int(),
  active: z.number().int(),
  failed: z.number().int(),
  rolledBack: z.number().int(),
  skipped: z.number().int(),
});
export type RolloutSummary = z.infer<typeof RolloutSummarySchema>;

export const ROLLOUT_ACTION_NAMES = ['pause', 'resume', 'abort', 'rollback', 'promote'] as const;
export type RolloutActionName = (typeof ROLLOUT_ACTION_NAMES)[number];

/** One operator action as the phase allows it or not (the fleet's actions table): what clients render. */
export const RolloutActionSchema = z.object({
  action: z.enum(ROLLOUT_ACTION_NAMES),
  allowed: z.boolean(),
  /** The least role that may take it. */
  role: z.enum(['operator', 'admin']),
  /** Why not, when the phase does not allow it. */
  reason: z.string().nullable(),
  /** What it does, in the words a client shows before an operator confirms it. */
  effect: z.string(),
});
export type RolloutAction = z.infer<typeof RolloutActionSchema>;

export const RolloutSchema = z.object({
  id: z.string(),
  model: ModelRefSchema,
  targets: RolloutTargetsSchema,
  spec: RolloutSpecSchema,
  createdAt: z.string(),
  createdBy: z.string(),
  status: RolloutStatusSchema,
  devices: z.array(RolloutDeviceSchema),
  /** Derived on read: the status's phase, the percentage reached, device counts, the actions table's row. */
  phase: z.enum(ROLLOUT_PHASES),
  percent: z.number(),
  summary: RolloutSummarySchema,
  actions: z.array(RolloutActionSchema),
});
export type Rollout = z.infer<typeof RolloutSchema>;

export const RolloutListSchema = z.object({ rollouts: z.array(RolloutSchema) });
export type RolloutList = z.infer<typeof RolloutListSchema>;
