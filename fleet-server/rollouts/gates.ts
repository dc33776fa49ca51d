/**
 * Gate measurement: one gate against what the devices reported over the same window, canary cohort next to
 * the control cohort (devices of the same targets still on the previous version). Verdicts combine
 * worst-first: failed > inconclusive > passed. Too few observations is `inconclusive`, never `passed`. Pure.
 */

import { GATE_DIRECTION, type Gate, type GateMetric } from '../../shared/api/rollouts.js';
import { countOf, emptyBuckets, mergeBuckets, quantileOf } from '../../shared/histogram.js';

export type Verdict = 'passed' | 'inconclusive' | 'failed';

/** Inference traffic of a set of devices on one model over the window. */
export interface Traffic {
  devices: number;
  requests: number;
  errors: number;
  latencyBuckets: number[];
}

export interface ShadowTraffic {
  devices: number;
  compared: number;
  agreed: number;
  dropped: number;
  errors: number;
  activeLatencyBuckets: number[];
  candidateLatencyBuckets: number[];
}

export interface GateInputs {
  /** Devices of the cohort that finished their install (active or failed), and the failed ones. */
  activation: { finished: number; failed: number };
  canary: Traffic;
  control: Traffic;
  /** Set in shadow steps. */
  shadow: ShadowTraffic | null;
  /** Drift reports of canary devices; null until drift reporting exists. */
  drift: { reporting: number; drifted: number } | null;
}

export interface GateResult {
  metric: GateMetric;
  direction: '<=' | '>=';
  threshold: number;
  /** The measured value, null when it could not be computed. */
  value: number | null;
  samples: number;
  minSamples: number;
  verdict: Verdict;
  detail: string;
}

export function emptyTraffic(): Traffic {
  return { devices: 0, requests: 0, errors: 0, latencyBuckets: emptyBuckets() };
}

export function emptyShadowTraffic(): ShadowTraffic {
  return {
    devices: 0,
    compared: 0,
    agreed: 0,
    dropped: 0,
    errors: 0,
    activeLatencyBuckets: emptyBuckets(),
    candidateLatencyBuckets: emptyBuckets(),
  };
}

export function addTraffic(into: Traffic, add: Omit<Traffic, 'devices'>): Traffic {
  into.requests += add.requests;
  into.errors += add.errors;
  mergeBuckets(into.latencyBuckets, add.latencyBuckets);
  return into;
}

export function evaluateGate(gate: Gate, inputs: GateInputs, context: 'analysis' | 'shadow'): GateResult {
  const direction = GATE_DIRECTION[gate.metric];
  const result = (value: number | null, samples: number, detail: string): GateResult => {
    const base = {
      metric: gate.metric,
      direction,
      threshold: gate.threshold,
      samples,
      minSamples: gate.minSamples,
    };
    if (value === null || !Number.isFinite(value) || samples < gate.minSamples) {
      const why =
        value === null || !Number.isFinite(value)
          ? detail
          : `${samples} of ${gate.minSamples} samples needed; ${detail}`;
      return {
        ...base,
        value: value !== null && Number.isFinite(value) ? value : null,
        verdict: 'inconclusive',
        detail: why,
      };
    }
    const ok = direction === '<=' ? value <= gate.threshold : value >= gate.threshold;
    return {
      ...base,
      value,
      verdict: ok ? 'passed' : 'failed',
      detail: `${gate.metric} ${round(value)} ${ok ? '' : 'not '}${direction} ${gate.threshold}; ${detail}`,
    };
  };

  switch (gate.metric) {
    case 'activation_failure_share': {
      const { finished, failed } = inputs.activation;
      return result(
        finished === 0 ? null : failed / finished,
        finished,
        `${failed} of ${finished} installs failed`,
      );
    }
    case 'error_rate': {
      const { canary, control } = inputs;
      if (canary.requests === 0) return result(null, 0, 'no canary traffic in the window');
      const canaryRate = canary.errors / canary.requests;
      // Without control traffic the canary's own rate is compared with the threshold.
      const controlRate = control.requests > 0 ? control.errors / control.requests : 0;
      return result(
        canaryRate - controlRate,
        canary.requests,
        `canary ${canary.errors}/${canary.requests} errors, control ${control.errors}/${control.requests}`,
      );
    }
    case 'p95_latency_ratio': {
      if (context === 'shadow') {
        const s = inputs.shadow;
        if (!s || s.compared === 0) return result(null, 0, 'no compared shadow requests in the window');
        const candidate = quantileOf(s.candidateLatencyBuckets, 0.95);
        const active = quantileOf(s.activeLatencyBuckets, 0.95);
        return result(
          candidate / active,
          s.compared,
          `candidate p95 ${candidate} ms, active p95 ${active} ms`,
        );
      }
      const { canary, control } = inputs;
      const samples = Math.min(countOf(canary.latencyBuckets), countOf(control.latencyBuckets));
      if (countOf(canary.latencyBuckets) === 0) return result(null, 0, 'no canary traffic in the window');
      if (countOf(control.latencyBuckets) === 0) return result(null, 0, 'no control traffic in the window');
      const c = quantileOf(canary.latencyBuckets, 0.95);
      const k = quantileOf(control.latencyBuckets, 0.95);
      return result(
        c / k,
        samples,
        `canary p95 ${c} ms over ${canary.devices} device(s), control p95 ${k} ms over ${control.devices}`,
      );
    }
    case 'drift_share': {
      const d = inputs.drift;
      if (!d) return result(null, 0, 'drift reporting is not available from these devices');
      if (d.reporting === 0) return result(null, 0, 'no drift reports in the window');
      return result(
        d.drifted / d.reporting,
        d.reporting,
        `${d.drifted} of ${d.reporting} devices report drift`,
      );
    }
    case 'shadow_agreement': {
      const s = inputs.shadow;
      if (!s || s.compared === 0) return result(null, 0, 'no compared shadow requests in the window');
      return result(
        s.agreed / s.compared,
        s.compared,
        `${s.agreed}/${s.compared} agreed over ${s.devices} device(s), ${s.dropped} dropped, ${s.errors} candidate errors`,
      );
    }
    default: {
      const never: never = gate.metric;
      throw new Error(`unknown gate metric ${String(never)}`);
    }
  }
}

/** Worst first: any failed → failed; else any inconclusive → inconclusive; else passed. */
export function combine(verdicts: readonly Verdict[]): Verdict {
  if (verdicts.includes('failed')) return 'failed';
  if (verdicts.includes('inconclusive')) return 'inconclusive';
  return 'passed';
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
