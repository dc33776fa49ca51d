/**
 * A rollout's spec: the ordered steps it goes through and the gates that guard them (Argo Rollouts' split:
 * the spec never changes after creation; the status, in state.ts, is what moves). Presets build the common
 * shapes; cohorts come from a stable hash of device id and rollout id. Pure.
 *
 * Steps:
 * - `setPercent n`: the first ⌈n% of targets⌉ (by cohort rank, at least one) run the new version; devices
 *   already shadowing it are switched with `activate`, others get an install. The step ends when every
 *   device of the cohort has finished (active, failed, skipped).
 * - `pause`: for `durationS`, or — without one — until an operator resumes.
 * - `analysis`: measures the gates every `intervalS` on the data since the step began, for `windowS`.
 * - `shadow`: the first `cohortPercent`% of targets install the new version in shadow mode, mirror
 *   `percent`% of their live requests to it for `durationS`, and the shadow gates (agreement, latency)
 *   decide. A later setPercent switches shadowing devices with `activate`.
 *
 * The canary preset starts with a shadow step on its first cohort (unless `shadowFirst: false`): a candidate
 * that predicts differently or runs slower is stopped before any device serves it.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  DEFAULT_GATES,
  GATE_DIRECTION,
  GATE_METRICS,
  type Gate,
  type GateInput,
  type GateMetric,
  type PresetOptionsInput,
  type RolloutSpec,
  RolloutSpecSchema,
  type StepInput,
  type Strategy,
} from '../../shared/api/rollouts.js';

/** The standard shadow gates. */
export const DEFAULT_SHADOW_GATES: Gate[] = [
  { metric: 'shadow_agreement', threshold: 0.95, minSamples: 50, failureLimit: 0 },
  { metric: 'p95_latency_ratio', threshold: 2, minSamples: 50, failureLimit: 0 },
];

/** Preset options with gates parsed (expressions turned into gate objects). */
export type PresetOptions = {
  [K in Exclude<keyof PresetOptionsInput, 'gates'>]?: PresetOptionsInput[K] | undefined;
} & { gates?: GateInput[] | undefined };

/** Preset options as given (gate expressions allowed) → options `presetSpec` takes; throws naming a bad gate. */
export function presetOptions(input: PresetOptionsInput): PresetOptions {
  return { ...input, gates: input.gates?.map((g) => (typeof g === 'string' ? parseGate(g) : g)) };
}

/** The spec of a preset strategy. Throws ZodError naming the problem for bad options. */
export function presetSpec(strategy: Exclude<Strategy, 'custom'>, options: PresetOptions = {}): RolloutSpec {
  const steps: StepInput[] = [];
  if (strategy === 'all-at-once') {
    steps.push({ setPercent: 100 });
  } else if (strategy === 'canary') {
    const percents = options.steps ?? [5, 25, 100];
    if (percents.at(-1) !== 100) throw validation('canary steps must end at 100');
    if (options.shadowFirst !== false && percents[0]! < 100) {
      steps.push({
        shadow: {
          ...shadowGatesFrom(options),
          cohortPercent: percents[0]!,
          ...(options.shadowPercent !== undefined ? { percent: options.shadowPercent } : {}),
          ...(options.windowS !== undefined ? { durationS: options.windowS } : {}),
          ...(options.minAgreement !== undefined ? { minAgreement: options.minAgreement } : {}),
        },
      });
    }
    for (let i = 0; i < percents.length; i++) {
      if (i > 0 && percents[i]! <= percents[i - 1]!) throw validation('canary steps must increase');
      steps.push({ setPercent: percents[i]! });
      if (percents[i] === 100) break;
      if (options.bakeS) steps.push({ pause: { durationS: options.bakeS } });
      steps.push({ analysis: options.windowS ? { windowS: options.windowS } : {} });
    }
  } else {
    steps.push({
      shadow: {
        ...(options.shadowPercent !== undefined ? { percent: options.shadowPercent } : {}),
        ...(options.windowS !== undefined ? { durationS: options.windowS } : {}),
        ...(options.minAgreement !== undefined ? { minAgreement: options.minAgreement } : {}),
      },
    });
    steps.push({ setPercent: 100 });
  }
  return RolloutSpecSchema.parse({
    strategy,
    steps,
    ...(options.gates ? { gates: options.gates } : {}),
    ...(options.deviceTimeoutS !== undefined ? { deviceTimeoutS: options.deviceTimeoutS } : {}),
    ...(options.onDeviceTimeout !== undefined ? { onDeviceTimeout: options.onDeviceTimeout } : {}),
  });
}

/**
 * An operator's latency gate applies to the shadow comparison too: the standard shadow gates, with the
 * rollout's own p95_latency_ratio gate (when it gives one) in place of the default. Agreement keeps its
 * `minAgreement` threshold.
 */
function shadowGatesFrom(options: PresetOptions): { gates?: GateInput[] } {
  const latency = options.gates?.find((g) => g.metric === 'p95_latency_ratio');
  if (!latency) return {};
  return {
    gates: DEFAULT_SHADOW_GATES.map((g) =>
      g.metric === 'p95_latency_ratio'
        ? latency
        : options.minAgreement !== undefined
          ? { ...g, threshold: options.minAgreement }
          : g,
    ),
  };
}

function validation(message: string): z.ZodError {
  return new z.ZodError([{ code: 'custom', message, path: ['steps'], input: undefined }]);
}

/**
 * `p95_latency_ratio<=1.2`, `error_rate<=0.02/200` (threshold / minSamples), `shadow_agreement>=0.98`.
 * The operator must match the metric's direction. Returns a Gate or throws an Error naming the problem.
 */
export function parseGate(
  text: string,
  defaults: Gate[] = [...DEFAULT_GATES, ...DEFAULT_SHADOW_GATES],
): Gate {
  const match = /^\s*([a-z0-9_]+)\s*(<=|>=)\s*([0-9.eE+-]+)\s*(?:\/\s*(\d+))?\s*$/.exec(text);
  if (!match) throw new Error(`gate '${text}' must look like METRIC<=VALUE or METRIC>=VALUE[/MIN_SAMPLES]`);
  const [, metric, op, value, min] = match;
  if (!(GATE_METRICS as readonly string[]).includes(metric!)) {
    throw new Error(`gate '${text}': unknown metric '${metric}' (one of ${GATE_METRICS.join(', ')})`);
  }
  const m = metric as GateMetric;
  if (GATE_DIRECTION[m] !== op)
    throw new Error(`gate '${text}': ${m} passes with ${GATE_DIRECTION[m]}, not ${op}`);
  const threshold = Number(value);
  if (!Number.isFinite(threshold)) throw new Error(`gate '${text}': '${value}' is not a number`);
  const base = defaults.find((g) => g.metric === m);
  return {
    metric: m,
    threshold,
    minSamples: min !== undefined ? Number(min) : (base?.minSamples ?? 1),
    failureLimit: base?.failureLimit ?? 0,
  };
}

/** A device's place in the rollout's cohort order: uniform in [0, 1), stable per (device, rollout). */
export function cohortKey(deviceId: string, rolloutId: string): number {
  const digest = createHash('sha256').update(`${rolloutId}\u0000${deviceId}`).digest();
  return digest.readUInt32BE(0) / 0x1_0000_0000;
}

/** How many of `total` targets a percentage covers: ⌈p·total/100⌉, at least one for p > 0. */
export function cohortSize(percent: number, total: number): number {
  if (percent <= 0 || total === 0) return 0;
  return Math.min(total, Math.max(1, Math.ceil((percent * total) / 100 - 1e-9)));
}
