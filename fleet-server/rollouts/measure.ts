/**
 * Gate measurement: what the fleet's telemetry says about a rollout's cohort against its control group, and
 * when a measurement is due. `FleetView` is the rollouts' input from telemetry (telemetry/windows.ts builds
 * one; this module never imports it). Pure.
 */

import type { Gate } from '../../shared/api/rollouts.js';
import {
  addTraffic,
  combine,
  emptyShadowTraffic,
  emptyTraffic,
  evaluateGate,
  type GateInputs,
  type ShadowTraffic,
  type Traffic,
} from './gates.js';
import {
  abortWith,
  currentPercent,
  type Measurement,
  type RolloutDevice,
  type RolloutHead,
  type RolloutRecord,
  withStatus,
} from './record.js';
import { cohortSize } from './spec.js';

const MAX_MEASUREMENTS = 20;

/** What reconcile needs to know about the fleet beyond the record: telemetry since the analysis began. */
export interface FleetView {
  /** Per device, this model's traffic by version over the analysis window. */
  traffic: ReadonlyMap<string, ReadonlyMap<number, Omit<Traffic, 'devices'>>>;
  /** Per device, shadow comparisons of this rollout's version over the analysis window. */
  shadow: ReadonlyMap<string, Omit<ShadowTraffic, 'devices'>>;
  /** Drift reports on this rollout's version over the analysis window (absent: no drift reporting wired). */
  drift?: { reporting: number; drifted: number } | undefined;
}

export interface StepOutcome {
  rollout: RolloutHead;
  done: 'advance' | 'wait';
  wakeAt: number | null;
}

/**
 * Take the step's measurement when one is due. `devices` is asked for only then (it is O(n): the cohort and
 * control traffic are summed over every device), so reconciles between measurements stay cheap.
 */
export function measure(
  rollout: RolloutHead,
  devices: () => RolloutDevice[],
  gates: Gate[],
  windowS: number,
  intervalS: number,
  context: 'analysis' | 'shadow',
  view: FleetView,
  now: Date,
): StepOutcome {
  const at = now.toISOString();
  let r = rollout;
  let analysis = r.status.analysis;
  if (!analysis || analysis.step !== r.status.step) {
    analysis = { step: r.status.step, startedAt: at, lastAt: null, failures: {}, measurements: [] };
    r = withStatus(
      r,
      now,
      { analysis },
      context === 'shadow' ? 'shadow' : 'analysis',
      `measuring ${gates.map((g) => g.metric).join(', ')} for ${windowS} s`,
    );
  }
  const started = Date.parse(analysis.startedAt);
  const end = started + windowS * 1000;
  const due =
    analysis.lastAt === null ? started + intervalS * 1000 : Date.parse(analysis.lastAt) + intervalS * 1000;
  const nowMs = now.getTime();
  if (nowMs < Math.min(due, end)) return { rollout: r, done: 'wait', wakeAt: Math.min(due, end) };

  const inputs = gateInputs({ ...r, devices: devices() }, view);
  const results = gates.map((g) => evaluateGate(g, inputs, context));
  const verdict = combine(results.map((x) => x.verdict));
  const failures = { ...analysis.failures };
  for (const res of results)
    if (res.verdict === 'failed') failures[res.metric] = (failures[res.metric] ?? 0) + 1;
  const measurement: Measurement = { at, verdict, gates: results };
  analysis = {
    ...analysis,
    lastAt: at,
    failures,
    measurements: [...analysis.measurements, measurement].slice(-MAX_MEASUREMENTS),
  };
  const measured = [
    ...(r.status.measured ?? []).filter((m) => m.step !== r.status.step),
    { step: r.status.step, ...measurement },
  ];
  r = withStatus(r, now, { analysis, measured });

  const tripped = gates.find((g) => (failures[g.metric] ?? 0) > g.failureLimit);
  if (tripped) {
    const res = results.find((x) => x.metric === tripped.metric)!;
    return {
      rollout: abortWith(
        r,
        { code: 'gate_failed', message: `${tripped.metric}: ${res.detail}` },
        'gate',
        now,
      ),
      done: 'wait',
      wakeAt: null,
    };
  }
  if (nowMs < end) return { rollout: r, done: 'wait', wakeAt: Math.min(nowMs + intervalS * 1000, end) };
  if (verdict === 'passed') return { rollout: r, done: 'advance', wakeAt: null };
  const why = results
    .filter((x) => x.verdict !== 'passed')
    .map((x) => `${x.metric}: ${x.detail}`)
    .join('; ');
  if (verdict === 'failed') {
    return {
      rollout: abortWith(r, { code: 'gate_failed', message: why }, 'gate', now),
      done: 'wait',
      wakeAt: null,
    };
  }
  return {
    rollout: withStatus(
      r,
      now,
      {
        phase: 'paused',
        pause: { kind: 'inconclusive', reason: { code: 'gate_inconclusive', message: why }, at, by: 'gate' },
      },
      'paused',
      `inconclusive: ${why}`,
    ),
    done: 'wait',
    wakeAt: null,
  };
}

/**
 * Whether reconciling now may take a gate measurement (so the fleet view is worth building): the rollout
 * is progressing in an analysis or shadow step whose measurement is due. Mirrors `measure`'s timing.
 */
export function measurementDue(r: Pick<RolloutRecord, 'spec' | 'status'>, now: Date): boolean {
  if (r.status.phase !== 'progressing') return false;
  const step = r.spec.steps[r.status.step];
  if (!step || !('analysis' in step || 'shadow' in step)) return false;
  const a = r.status.analysis;
  if (!a || a.step !== r.status.step) return false; // a new analysis measures only after its first interval
  const { windowS, intervalS } =
    'analysis' in step ? step.analysis : { windowS: step.shadow.durationS, intervalS: step.shadow.intervalS };
  const started = Date.parse(a.startedAt);
  const due = a.lastAt === null ? started + intervalS * 1000 : Date.parse(a.lastAt) + intervalS * 1000;
  return now.getTime() >= Math.min(due, started + windowS * 1000);
}

/** Canary: cohort devices active on the new version. Control: targets not yet in any cohort. */
export function gateInputs(
  r: Pick<RolloutRecord, 'model' | 'spec' | 'status' | 'devices'>,
  view: FleetView,
): GateInputs {
  const percent = currentPercent(r);
  const size = cohortSize(percent, r.devices.length);
  const cohort = r.devices.filter((d) => d.rank < size);
  const finished = cohort.filter((d) => d.state === 'active' || d.state === 'failed');
  const canary = emptyTraffic();
  const control = emptyTraffic();
  const shadow: ShadowTraffic = emptyShadowTraffic();
  for (const d of r.devices) {
    const traffic = view.traffic.get(d.deviceId);
    if (d.state === 'active' && traffic) {
      const mine = traffic.get(r.model.version);
      if (mine && mine.requests > 0) {
        addTraffic(canary, mine);
        canary.devices++;
      }
    } else if (d.state === 'waiting' && traffic) {
      let counted = false;
      for (const [version, t] of traffic) {
        if (version === r.model.version || t.requests === 0) continue;
        addTraffic(control, t);
        counted = true;
      }
      if (counted) control.devices++;
    }
    const s = view.shadow.get(d.deviceId);
    if (d.state === 'shadowing' && s && s.compared + s.dropped + s.errors > 0) {
      shadow.devices++;
      shadow.compared += s.compared;
      shadow.agreed += s.agreed;
      shadow.dropped += s.dropped;
      shadow.errors += s.errors;
      for (let i = 0; i < s.activeLatencyBuckets.length && i < shadow.activeLatencyBuckets.length; i++) {
        shadow.activeLatencyBuckets[i]! += s.activeLatencyBuckets[i]!;
        shadow.candidateLatencyBuckets[i]! += s.candidateLatencyBuckets[i] ?? 0;
      }
    }
  }
  return {
    activation: { finished: finished.length, failed: finished.filter((d) => d.state === 'failed').length },
    canary,
    control,
    shadow: r.devices.some((d) => d.mode === 'shadow') ? shadow : null,
    drift: view.drift ?? null,
  };
}
