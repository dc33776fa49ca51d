/**
 * The pure rollout rules, table-driven: `reconcile` through every step kind and gate outcome, operator
 * actions, device timeouts and re-sends, idempotence (what a restart relies on), and how device reports move
 * per-device state. Time is a plain Date passed in.
 */
import { describe, expect, it } from 'vitest';
import { applyAction } from '../../../../fleet-server/rollouts/actions.js';
import { type FleetView, measurementDue } from '../../../../fleet-server/rollouts/measure.js';
import { applyUpdate, join, reconcile, unfinishedFor } from '../../../../fleet-server/rollouts/reconcile.js';
import {
  newRollout,
  type PlannedCommand,
  type RolloutRecord,
  summaryOf,
} from '../../../../fleet-server/rollouts/record.js';
import { cohortSize, parseGate, presetSpec } from '../../../../fleet-server/rollouts/spec.js';
import { type RolloutSpec, RolloutSpecSchema } from '../../../../shared/api/rollouts.js';
import { emptyBuckets, LATENCY_BOUNDS_MS } from '../../../../shared/histogram.js';
import type { UpdateMessage } from '../../../../shared/protocol/messages.js';

const T0 = Date.parse('2026-11-01T00:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000);
const NONE: FleetView = { traffic: new Map(), shadow: new Map() };

/** A rollout of clf@2 over dev-00..dev-(n-1), cohort order = numeric order. */
function start(spec: RolloutSpec, n: number): RolloutRecord {
  const ids = Array.from({ length: n }, (_, i) => `dev-${String(i).padStart(2, '0')}`);
  return newRollout({
    id: 'ro-1',
    model: { name: 'clf', version: 2 },
    targets: { tags: { site: 'a' } },
    spec,
    deviceIds: ids,
    cohortKey: (id) => Number(id.slice(4)) / 100,
    actor: 'op',
    now: at(0),
  });
}

/** Drives reconcile like the controller does, collecting every planned command. */
class Sim {
  sent: PlannedCommand[] = [];
  private seq = 0;
  constructor(public r: RolloutRecord) {}
  tick(seconds: number, view: FleetView = NONE) {
    const result = reconcile(this.r, view, at(seconds), () => `c${++this.seq}`);
    this.r = result.rollout;
    this.sent.push(...result.commands);
    return result;
  }
  /** The device reports `state` on the command it last received of `kind`. */
  report(
    deviceId: string,
    state: UpdateMessage['state'],
    seconds: number,
    kind: 'install' | 'rollback' = 'install',
  ) {
    const d = this.r.devices.find((x) => x.deviceId === deviceId)!;
    const commandId = kind === 'rollback' ? d.rollbackId! : d.commandId!;
    this.r = applyUpdate(this.r, deviceId, update(commandId, state), at(seconds));
  }
  /** Every device that has an install out reports `state`. */
  reportAll(state: UpdateMessage['state'], seconds: number) {
    for (const d of this.r.devices)
      if (d.state === 'pending' || d.state === 'downloading') this.report(d.deviceId, state, seconds);
  }
  act(action: Parameters<typeof applyAction>[1], seconds: number, actor = 'op') {
    this.r = applyAction(this.r, action, actor, at(seconds));
  }
  kinds(deviceId?: string) {
    return this.sent.filter((c) => !deviceId || c.deviceId === deviceId).map((c) => c.kind);
  }
  installed() {
    return [...new Set(this.sent.filter((c) => c.kind === 'install').map((c) => c.deviceId))].sort();
  }
  state(deviceId: string) {
    return this.r.devices.find((d) => d.deviceId === deviceId)!.state;
  }
}

function update(commandId: string, state: UpdateMessage['state']): UpdateMessage {
  return {
    v: 1,
    type: 'update',
    id: `u-${commandId}-${state}`,
    ts: 0,
    commandId,
    rolloutId: 'ro-1',
    model: { name: 'clf', version: 2 },
    state,
    reason: state === 'failed' ? { code: 'selftest_failed', message: 'golden mismatch' } : null,
    executionProvider: state === 'active' ? 'cpu' : null,
    serving: null,
  };
}

/** Telemetry: every active device on v2 and every waiting device on v1, `requests` each at `latency` ms. */
function traffic(
  r: RolloutRecord,
  canary: { requests: number; errors?: number; latencyMs: number },
  control: { requests: number; errors?: number; latencyMs: number } = {
    requests: canary.requests,
    latencyMs: 1,
  },
): FleetView {
  const hist = (n: number, ms: number) => {
    const b = emptyBuckets();
    b[LATENCY_BOUNDS_MS.findIndex((x) => x >= ms)] = n;
    return b;
  };
  const map = new Map<string, Map<number, { requests: number; errors: number; latencyBuckets: number[] }>>();
  for (const d of r.devices) {
    const side = d.state === 'active' ? canary : d.state === 'waiting' ? control : null;
    if (!side) continue;
    map.set(
      d.deviceId,
      new Map([
        [
          d.state === 'active' ? 2 : 1,
          {
            requests: side.requests,
            errors: side.errors ?? 0,
            latencyBuckets: hist(side.requests, side.latencyMs),
          },
        ],
      ]),
    );
  }
  return { traffic: map, shadow: new Map() };
}

function shadowView(r: RolloutRecord, compared: number, agreed: number, candidateMs = 1): FleetView {
  const hist = (n: number, ms: number) => {
    const b = emptyBuckets();
    b[LATENCY_BOUNDS_MS.findIndex((x) => x >= ms)] = n;
    return b;
  };
  const shadow = new Map(
    r.devices
      .filter((d) => d.state === 'shadowing')
      .map((d) => [
        d.deviceId,
        {
          compared,
          agreed,
          dropped: 0,
          errors: 0,
          activeLatencyBuckets: hist(compared, 1),
          candidateLatencyBuckets: hist(compared, candidateMs),
        },
      ]),
  );
  return { traffic: new Map(), shadow };
}

/** Canary without the shadow-first step, for the analysis gates (shadow-first has its own tests). */
const canary = (options: Parameters<typeof presetSpec>[1] = {}) =>
  presetSpec('canary', { windowS: 60, shadowFirst: false, ...options });

describe('cohorts and specs', () => {
  it.each([
    [5, 10, 1],
    [5, 20, 1],
    [25, 20, 5],
    [25, 10, 3],
    [100, 10, 10],
    [1, 3, 1],
    [50, 0, 0],
  ])('setPercent %i of %i targets covers %i device(s)', (percent, total, size) => {
    expect(cohortSize(percent, total)).toBe(size);
  });

  it('canary preset: shadow on 5% → 5 → analysis → 25 → analysis → 100, with bake pauses when asked', () => {
    expect(presetSpec('canary').steps).toEqual([
      { shadow: { percent: 100, cohortPercent: 5, durationS: 60, minAgreement: 0.95, intervalS: 10 } },
      { setPercent: 5 },
      { analysis: { windowS: 60, intervalS: 10 } },
      { setPercent: 25 },
      { analysis: { windowS: 60, intervalS: 10 } },
      { setPercent: 100 },
    ]);
    expect(presetSpec('canary', { steps: [10, 100], bakeS: 600, shadowFirst: false }).steps).toEqual([
      { setPercent: 10 },
      { pause: { durationS: 600 } },
      { analysis: { windowS: 60, intervalS: 10 } },
      { setPercent: 100 },
    ]);
    expect(() => presetSpec('canary', { steps: [10, 50] })).toThrow(/end at 100/);
    expect(() => presetSpec('canary', { steps: [50, 20, 100] })).toThrow(/increase/);
    expect(presetSpec('blue-green').steps).toEqual([
      { shadow: { percent: 100, cohortPercent: 100, durationS: 60, minAgreement: 0.95, intervalS: 10 } },
      { setPercent: 100 },
    ]);
    expect(RolloutSpecSchema.safeParse({ strategy: 'custom', steps: [{ setPercent: 50 }] }).success).toBe(
      false,
    );
  });

  it("an operator's latency gate applies to the shadow comparison too; agreement keeps its threshold", () => {
    const spec = presetSpec('canary', {
      gates: [parseGate('p95_latency_ratio<=3/40'), parseGate('error_rate<=0.02')],
    });
    const shadow = spec.steps[0]!;
    expect('shadow' in shadow && shadow.shadow.gates).toEqual([
      { metric: 'shadow_agreement', threshold: 0.95, minSamples: 50, failureLimit: 0 },
      { metric: 'p95_latency_ratio', threshold: 3, minSamples: 40, failureLimit: 0 },
    ]);
    const defaults = presetSpec('canary').steps[0]!;
    expect('shadow' in defaults && defaults.shadow.gates).toBeUndefined();
  });

  it('parses gate expressions and refuses the wrong direction or an unknown metric', () => {
    expect(parseGate('p95_latency_ratio<=1.2')).toEqual({
      metric: 'p95_latency_ratio',
      threshold: 1.2,
      minSamples: 50,
      failureLimit: 0,
    });
    expect(parseGate('shadow_agreement >= 0.99 / 500')).toMatchObject({ threshold: 0.99, minSamples: 500 });
    expect(() => parseGate('p95_latency_ratio>=1.2')).toThrow(/passes with <=/);
    expect(() => parseGate('speed<=2')).toThrow(/unknown metric 'speed'/);
    expect(() => parseGate('p95_latency_ratio=2')).toThrow(/must look like/);
  });
});

describe('reconcile: all-at-once', () => {
  it('installs everywhere at once; succeeded when every device is active', () => {
    const sim = new Sim(start(presetSpec('all-at-once'), 3));
    sim.tick(0);
    expect(sim.installed()).toEqual(['dev-00', 'dev-01', 'dev-02']);
    expect(sim.r.status.phase).toBe('progressing');
    sim.reportAll('active', 5);
    sim.tick(5);
    expect(sim.r.status.phase).toBe('succeeded');
    expect(sim.sent).toHaveLength(3);
  });

  it('ends failed when a device failed, and keeps its reason', () => {
    const sim = new Sim(start(presetSpec('all-at-once'), 2));
    sim.tick(0);
    sim.report('dev-00', 'active', 1);
    sim.report('dev-01', 'failed', 1);
    sim.tick(1);
    expect(sim.r.status.phase).toBe('failed');
    expect(sim.r.devices[1]!.reason).toEqual({ code: 'selftest_failed', message: 'golden mismatch' });
  });
});

describe('reconcile: canary steps and gates', () => {
  it('a good version goes through every step to 100%, cohorts only growing', () => {
    const sim = new Sim(start(canary(), 20));
    sim.tick(0);
    expect(sim.installed()).toEqual(['dev-00']);
    sim.reportAll('active', 2);
    sim.tick(2);
    expect(sim.r.status.analysis).toMatchObject({ step: 1, startedAt: at(2).toISOString() });
    for (let s = 12; s <= 62; s += 10) sim.tick(s, traffic(sim.r, { requests: 100, latencyMs: 1 }));
    expect(sim.r.status.step).toBe(2);
    expect(sim.installed()).toEqual(['dev-00', 'dev-01', 'dev-02', 'dev-03', 'dev-04']);
    sim.reportAll('active', 63);
    sim.tick(63);
    for (let s = 73; s <= 123; s += 10) sim.tick(s, traffic(sim.r, { requests: 100, latencyMs: 1 }));
    expect(sim.installed()).toHaveLength(20);
    sim.reportAll('active', 130);
    sim.tick(130);
    expect(sim.r.status.phase).toBe('succeeded');
    // Each analysis ended with its step, yet every step's last gate values stay on the record.
    expect(sim.r.status.analysis).toBeNull();
    expect(sim.r.status.measured!.map((m) => [m.step, m.verdict, m.gates.length])).toEqual([
      [1, 'passed', 3],
      [3, 'passed', 3],
    ]);
    expect(sim.kinds().every((k) => k === 'install')).toBe(true);
    expect(sim.r.status.events.map((e) => e.type)).toContain('succeeded');
  });

  it.each([
    ['5x slower', { requests: 100, latencyMs: 5 }, 'p95_latency_ratio'],
    ['erroring', { requests: 100, errors: 20, latencyMs: 1 }, 'error_rate'],
  ])('a %s canary fails the first analysis: aborted, rolled back, nobody else touched', (_, bad, metric) => {
    const sim = new Sim(start(canary(), 20));
    sim.tick(0);
    sim.reportAll('active', 2);
    sim.tick(2);
    sim.tick(12, traffic(sim.r, bad));
    expect(sim.r.status.phase).toBe('aborted');
    expect(sim.r.status.abort!.reason.code).toBe('gate_failed');
    expect(sim.r.status.abort!.reason.message).toContain(metric);
    expect(sim.kinds('dev-00')).toEqual(['install', 'rollback']);
    expect(sim.installed()).toEqual(['dev-00']);
    sim.report('dev-00', 'rolled_back', 14, 'rollback');
    sim.tick(14);
    expect(sim.r.status.phase).toBe('rolled_back');
    expect(sim.r.devices[0]).toMatchObject({ state: 'rolled_back', reason: { code: 'gate_failed' } });
    // Nothing more is ever sent.
    const before = sim.sent.length;
    sim.tick(1000);
    expect(sim.sent).toHaveLength(before);
  });

  it('a failed install in the cohort fails the activation gate', () => {
    const sim = new Sim(start(canary({ steps: [10, 100] }), 20));
    sim.tick(0);
    sim.report('dev-00', 'active', 1);
    sim.report('dev-01', 'failed', 1);
    sim.tick(1);
    sim.tick(11, traffic(sim.r, { requests: 100, latencyMs: 1 }));
    expect(sim.r.status.phase).toBe('aborted');
    expect(sim.r.status.abort!.reason.message).toMatch(/activation_failure_share: .*1 of 2 installs failed/);
    expect(sim.kinds('dev-00')).toEqual(['install', 'rollback']);
    expect(sim.kinds('dev-01')).toEqual(['install']); // it never activated: nothing to roll back
  });

  it('too little traffic is inconclusive: paused with the reason; resume moves past the gate', () => {
    const sim = new Sim(start(canary(), 20));
    sim.tick(0);
    sim.reportAll('active', 2);
    sim.tick(2);
    for (let s = 12; s <= 62; s += 10) sim.tick(s, traffic(sim.r, { requests: 3, latencyMs: 1 }));
    expect(sim.r.status.phase).toBe('paused');
    expect(sim.r.status.pause).toMatchObject({ kind: 'inconclusive', reason: { code: 'gate_inconclusive' } });
    expect(sim.r.status.pause!.reason.message).toMatch(/error_rate: 3 of 50 samples needed/);
    const sent = sim.sent.length;
    sim.tick(500);
    expect(sim.sent).toHaveLength(sent);
    sim.act({ type: 'resume' }, 600);
    sim.tick(600);
    expect(sim.r.status.step).toBe(2);
    expect(sim.installed()).toHaveLength(5);
  });

  it('tolerates failed measurements up to the failure limit', () => {
    const spec = canary({
      gates: [{ metric: 'p95_latency_ratio', threshold: 1.5, minSamples: 10, failureLimit: 1 }],
    });
    const sim = new Sim(start(spec, 20));
    sim.tick(0);
    sim.reportAll('active', 2);
    sim.tick(2);
    sim.tick(12, traffic(sim.r, { requests: 100, latencyMs: 5 }));
    expect(sim.r.status.phase).toBe('progressing');
    expect(sim.r.status.analysis!.failures).toEqual({ p95_latency_ratio: 1 });
    sim.tick(22, traffic(sim.r, { requests: 100, latencyMs: 5 }));
    expect(sim.r.status.phase).toBe('aborted');
  });

  it('reports each gate’s measured value against its threshold', () => {
    const sim = new Sim(start(canary(), 20));
    sim.tick(0);
    sim.reportAll('active', 2);
    sim.tick(2);
    sim.tick(12, traffic(sim.r, { requests: 100, latencyMs: 1.5 }, { requests: 100, latencyMs: 1 }));
    const m = sim.r.status.analysis!.measurements.at(-1)!;
    expect(m.gates.map((g) => [g.metric, g.value, g.threshold, g.verdict])).toEqual([
      ['activation_failure_share', 0, 0, 'passed'],
      ['error_rate', 0, 0.01, 'passed'],
      ['p95_latency_ratio', 1.5, 2, 'passed'],
    ]);
  });
});

describe('reconcile: the drift_share gate', () => {
  const driftGate = canary({
    shadowFirst: false,
    gates: [parseGate('activation_failure_share<=0/1'), parseGate('drift_share<=0.5/2')],
  });
  /** One measurement, or (`untilEnd`) measurements until the analysis window is over. */
  const run = (view: (r: RolloutRecord) => FleetView, untilEnd = false) => {
    const sim = new Sim(start(driftGate, 20));
    sim.tick(0);
    sim.reportAll('active', 2);
    sim.tick(2);
    for (let s = 12; s <= (untilEnd ? 62 : 12); s += 10) sim.tick(s, view(sim.r));
    return sim.r.status;
  };
  const withDrift = (reporting: number, drifted: number) => (r: RolloutRecord) => ({
    ...traffic(r, { requests: 100, latencyMs: 1 }),
    drift: { reporting, drifted },
  });

  it('passes while few canary devices drift, and reports the share', () => {
    const status = run(withDrift(4, 1));
    expect(status.phase).toBe('progressing');
    expect(status.analysis!.measurements.at(-1)!.gates.find((g) => g.metric === 'drift_share')).toMatchObject(
      {
        verdict: 'passed',
        value: 0.25,
        samples: 4,
      },
    );
  });

  it('fails when too many drift: aborted with the reason', () => {
    const status = run(withDrift(4, 3));
    expect(status.phase).toBe('aborted');
    expect(status.abort!.reason.message).toMatch(/drift_share.*3 of 4 devices report drift/);
  });

  it('too few reporting devices, or no drift reporting at all, is inconclusive and says so', () => {
    expect(run(withDrift(1, 1), true).pause!.reason.message).toMatch(/drift_share: 1 of 2 samples needed/);
    expect(run((r) => traffic(r, { requests: 100, latencyMs: 1 }), true).pause!.reason.message).toMatch(
      /drift reporting is not available/,
    );
  });
});

describe('reconcile: pauses and operator actions', () => {
  it('a timed pause waits and says when to look again; an open pause waits for resume', () => {
    const spec = RolloutSpecSchema.parse({
      strategy: 'custom',
      steps: [{ setPercent: 10 }, { pause: { durationS: 300 } }, { pause: {} }, { setPercent: 100 }],
    });
    const sim = new Sim(start(spec, 10));
    sim.tick(0);
    sim.reportAll('active', 1);
    const waiting = sim.tick(1);
    expect(waiting.nextCheckAt).toEqual(at(301));
    sim.tick(301);
    expect(sim.r.status).toMatchObject({ phase: 'paused', step: 2, pause: { kind: 'step' } });
    sim.act({ type: 'resume' }, 400);
    sim.tick(400);
    expect(sim.installed()).toHaveLength(10);
  });

  it('operator pause stops new cohorts; resume continues the same step', () => {
    const sim = new Sim(
      start(
        presetSpec('canary', {
          steps: [10, 100],
          gates: [{ metric: 'activation_failure_share', threshold: 0, minSamples: 1 }],
          windowS: 10,
          shadowFirst: false,
        }),
        10,
      ),
    );
    sim.tick(0);
    sim.act({ type: 'pause', reason: 'lunch' }, 1);
    sim.reportAll('active', 2);
    sim.tick(50);
    expect(sim.r.status).toMatchObject({
      phase: 'paused',
      step: 0,
      pause: { kind: 'operator', reason: { message: 'lunch' } },
    });
    expect(() => sim.act({ type: 'pause' }, 51)).toThrow(/cannot pause .* it is paused/);
    sim.act({ type: 'resume' }, 60);
    sim.tick(60);
    sim.tick(70);
    expect(sim.r.status.step).toBe(2);
    expect(sim.installed()).toHaveLength(10);
  });

  it('abort rolls back only devices that got the version, including ones still installing', () => {
    const sim = new Sim(start(canary({ steps: [30, 100] }), 10));
    sim.tick(0);
    sim.report('dev-00', 'active', 1);
    sim.report('dev-01', 'downloading', 1);
    sim.act({ type: 'abort', reason: 'wrong build' }, 2);
    sim.tick(2);
    expect(sim.kinds('dev-00')).toEqual(['install', 'rollback']);
    expect(sim.kinds('dev-01')).toEqual(['install', 'rollback']);
    expect(sim.kinds('dev-02')).toEqual(['install', 'rollback']);
    expect(sim.kinds('dev-03')).toEqual([]);
    expect(sim.sent.find((c) => c.kind === 'rollback')).toMatchObject({
      reason: { code: 'operator_abort', message: 'wrong build' },
    });
    for (const id of ['dev-00', 'dev-01', 'dev-02']) sim.report(id, 'rolled_back', 3, 'rollback');
    sim.tick(3);
    expect(sim.r.status.phase).toBe('rolled_back');
    expect(() => sim.act({ type: 'abort' }, 4)).toThrow(/already rolled_back/);
  });

  it('rollback after success sends every device back, with the operator’s reason', () => {
    const sim = new Sim(start(presetSpec('all-at-once'), 2));
    sim.tick(0);
    sim.reportAll('active', 1);
    sim.tick(1);
    sim.act({ type: 'rollback', reason: 'complaints' }, 100);
    sim.tick(100);
    expect(sim.kinds()).toEqual(['install', 'install', 'rollback', 'rollback']);
    for (const d of sim.r.devices) sim.report(d.deviceId, 'rolled_back', 101, 'rollback');
    sim.tick(101);
    expect(sim.r.status).toMatchObject({
      phase: 'rolled_back',
      abort: { reason: { code: 'operator_rollback', message: 'complaints' } },
    });
  });

  it('promote skips the remaining steps and gates', () => {
    const sim = new Sim(start(canary(), 20));
    sim.tick(0);
    sim.act({ type: 'promote' }, 1, 'admin');
    sim.tick(1);
    expect(sim.installed()).toHaveLength(20);
    expect(sim.r.status.events.map((e) => e.type)).toContain('promoted');
    expect(sim.r.status.step).toBe(4);
  });
});

describe('reconcile: canary with the first cohort shadowing first', () => {
  it('a good candidate shadows on the first cohort, is activated there, then widens', () => {
    const sim = new Sim(start(presetSpec('canary', { windowS: 30 }), 20));
    sim.tick(0);
    expect(sim.sent).toEqual([
      { kind: 'install', deviceId: 'dev-00', id: 'c1', mode: 'shadow', shadowPercent: 100 },
    ]);
    sim.report('dev-00', 'shadowing', 3);
    sim.tick(3);
    for (let s = 13; s <= 33; s += 10) sim.tick(s, shadowView(sim.r, 100, 100));
    expect(sim.kinds('dev-00')).toEqual(['install', 'activate']);
    sim.report('dev-00', 'active', 34);
    sim.tick(34);
    expect(sim.r.status).toMatchObject({ step: 2, phase: 'progressing' });
    expect(sim.installed()).toEqual(['dev-00']);
  });

  it.each([
    ['predicts differently', 100, 70, 1, 'shadow_agreement'],
    ['runs 5x slower', 100, 100, 5, 'p95_latency_ratio'],
  ])(
    'a candidate that %s is stopped in the first cohort, never served anywhere',
    (_, compared, agreed, ms, metric) => {
      const sim = new Sim(start(presetSpec('canary', { windowS: 30 }), 20));
      sim.tick(0);
      sim.report('dev-00', 'shadowing', 3);
      sim.tick(3);
      sim.tick(13, shadowView(sim.r, compared, agreed, ms));
      expect(sim.r.status.phase).toBe('aborted');
      expect(sim.r.status.abort!.reason.message).toContain(metric);
      expect(sim.sent.map((c) => [c.deviceId, c.kind])).toEqual([
        ['dev-00', 'install'],
        ['dev-00', 'rollback'],
      ]);
      sim.report('dev-00', 'rolled_back', 14, 'rollback');
      sim.tick(14);
      expect(sim.r.status.phase).toBe('rolled_back');
    },
  );
});

describe('reconcile: blue-green', () => {
  it('shadows on every target, switches with activate only when agreement passes', () => {
    const sim = new Sim(start(presetSpec('blue-green', { windowS: 30 }), 4));
    sim.tick(0);
    expect(sim.sent.every((c) => c.kind === 'install' && c.mode === 'shadow')).toBe(true);
    expect(sim.installed()).toHaveLength(4);
    sim.reportAll('shadowing', 5);
    sim.tick(5);
    for (let s = 15; s <= 35; s += 10) sim.tick(s, shadowView(sim.r, 100, 99));
    expect(sim.kinds().filter((k) => k === 'activate')).toHaveLength(4);
    for (const d of sim.r.devices) sim.report(d.deviceId, 'active', 36);
    sim.tick(36);
    expect(sim.r.status.phase).toBe('succeeded');
  });

  it('a disagreeing candidate is discarded everywhere and never activated', () => {
    const sim = new Sim(start(presetSpec('blue-green', { windowS: 30 }), 4));
    sim.tick(0);
    sim.reportAll('shadowing', 5);
    sim.tick(5);
    sim.tick(15, shadowView(sim.r, 100, 60));
    expect(sim.r.status.phase).toBe('aborted');
    expect(sim.r.status.abort!.reason.message).toMatch(/shadow_agreement .*0\.6 not >= 0\.95/);
    expect(sim.kinds()).not.toContain('activate');
    expect(sim.kinds().filter((k) => k === 'rollback')).toHaveLength(4);
  });

  it('a slow candidate fails the latency gate in shadow', () => {
    const sim = new Sim(start(presetSpec('blue-green', { windowS: 30 }), 2));
    sim.tick(0);
    sim.reportAll('shadowing', 5);
    sim.tick(5);
    sim.tick(15, shadowView(sim.r, 100, 100, 5));
    expect(sim.r.status.abort!.reason.message).toMatch(/p95_latency_ratio/);
  });
});

describe('reconcile: timeouts, re-sends and restarts', () => {
  it.each([
    ['fail', 'failed'],
    ['skip', 'skipped'],
  ] as const)('a device that never reports is %sed after the device timeout', (onDeviceTimeout, state) => {
    const sim = new Sim(start(presetSpec('all-at-once', { deviceTimeoutS: 120, onDeviceTimeout }), 2));
    sim.tick(0);
    sim.report('dev-00', 'active', 1);
    const first = sim.tick(1);
    expect(first.nextCheckAt).toEqual(at(30));
    sim.tick(30);
    // Re-sent with the original id (devices ignore ids they have seen).
    expect(sim.sent.filter((c) => c.deviceId === 'dev-01').map((c) => c.id)).toEqual(['c2', 'c2']);
    sim.tick(150);
    expect(sim.state('dev-01')).toBe(state);
    expect(sim.r.devices[1]!.reason).toMatchObject({ code: 'device_timeout' });
    expect(sim.r.status.phase).toBe(state === 'failed' ? 'failed' : 'succeeded');
  });

  it('re-sending a command does not restart the device timeout: it counts from when the command was issued', () => {
    const sim = new Sim(start(presetSpec('all-at-once', { deviceTimeoutS: 120 }), 1));
    sim.tick(0);
    for (let s = 30; s < 120; s += 30) {
      sim.tick(s);
      expect(sim.state('dev-00'), `at ${s} s`).toBe('pending');
    }
    expect(sim.kinds('dev-00')).toEqual(['install', 'install', 'install', 'install']);
    sim.tick(120);
    expect(sim.state('dev-00')).toBe('failed');
    expect(sim.r.devices[0]!.reason).toMatchObject({ code: 'device_timeout' });
  });

  it('a device that joins a succeeded rollout later is sent the install, re-sent, and times out like any other', () => {
    const sim = new Sim(
      start(presetSpec('all-at-once', { deviceTimeoutS: 120, onDeviceTimeout: 'skip' }), 1),
    );
    sim.tick(0);
    sim.report('dev-00', 'active', 1);
    sim.tick(1);
    expect(sim.r.status.phase).toBe('succeeded');
    sim.r = join(sim.r, { deviceId: 'dev-late', variant: 'default' }, at(10));
    expect(sim.state('dev-late')).toBe('waiting');
    const joined = sim.tick(10);
    expect(sim.kinds('dev-late')).toEqual(['install']);
    expect(joined.nextCheckAt).toEqual(at(40));
    sim.tick(40);
    expect(sim.sent.filter((c) => c.deviceId === 'dev-late').map((c) => c.id)).toEqual(['c2', 'c2']);
    expect(unfinishedFor(sim.r, 'dev-late')).toMatchObject({ kind: 'install', id: 'c2' });
    sim.tick(130);
    expect(sim.state('dev-late')).toBe('skipped');
    expect(sim.r.status.phase).toBe('succeeded');
    // Joining twice changes nothing; a device no variant fits joins as skipped, with the reason.
    expect(join(sim.r, { deviceId: 'dev-late', variant: 'default' }, at(131))).toBe(sim.r);
    const reason = { code: 'no_variant', message: 'no variant fits' };
    sim.r = join(sim.r, { deviceId: 'dev-odd', variant: null, reason }, at(132));
    sim.tick(132);
    expect(sim.kinds('dev-odd')).toEqual([]);
    expect(sim.r.devices.find((d) => d.deviceId === 'dev-odd')).toMatchObject({ state: 'skipped', reason });
  });

  it('reconciling again at the same instant changes nothing and sends nothing (restart safety)', () => {
    const sim = new Sim(start(canary(), 20));
    sim.tick(0);
    sim.reportAll('active', 2);
    sim.tick(2);
    sim.tick(12, traffic(sim.r, { requests: 100, latencyMs: 1 }));
    const before = sim.r;
    const again = reconcile(before, traffic(before, { requests: 100, latencyMs: 1 }), at(12), () => 'never');
    expect(again.commands).toEqual([]);
    expect(again.rollout).toEqual(before);
  });

  it('measurementDue says exactly when a tick takes a measurement (the controller builds the view only then)', () => {
    const sim = new Sim(start(presetSpec('canary', { windowS: 25 }), 20));
    const seen: boolean[] = [];
    for (let s = 0; s <= 200; s += 3) {
      const due = measurementDue(sim.r, at(s));
      const before = sim.r.status.analysis?.measurements.length ?? 0;
      const stepBefore = sim.r.status.step;
      sim.tick(
        s,
        sim.r.devices.some((d) => d.state === 'shadowing')
          ? shadowView(sim.r, 100, 100)
          : traffic(sim.r, { requests: 100, latencyMs: 1 }),
      );
      for (const d of sim.r.devices) {
        if (d.state === 'pending') sim.report(d.deviceId, d.mode === 'shadow' ? 'shadowing' : 'active', s);
        if (d.state === 'shadowing' && d.activateId) sim.report(d.deviceId, 'active', s);
      }
      const measured =
        sim.r.status.step !== stepBefore || (sim.r.status.analysis?.measurements.length ?? 0) > before;
      if (due) expect(measured, `tick at ${s}`).toBe(true);
      if (!due)
        expect(
          (sim.r.status.analysis?.measurements.length ?? 0) > before && sim.r.status.step === stepBefore,
          `tick at ${s}`,
        ).toBe(false);
      seen.push(due);
    }
    expect(seen.filter(Boolean).length).toBeGreaterThan(5);
    expect(sim.r.status.phase).toBe('succeeded');
  });

  it('names the command a device still owes when it comes back online', () => {
    const sim = new Sim(start(presetSpec('all-at-once'), 2));
    sim.tick(0);
    sim.report('dev-00', 'active', 1);
    expect(unfinishedFor(sim.r, 'dev-00')).toBeNull();
    expect(unfinishedFor(sim.r, 'dev-01')).toMatchObject({ kind: 'install', id: 'c2' });
    sim.act({ type: 'abort' }, 2);
    sim.tick(2);
    expect(unfinishedFor(sim.r, 'dev-00')).toMatchObject({ kind: 'rollback' });
    expect(unfinishedFor(sim.r, 'nobody')).toBeNull();
  });
});

describe('applyUpdate', () => {
  it('never changes the record it was given, and ignores unknown command ids', () => {
    const sim = new Sim(start(presetSpec('all-at-once'), 1));
    sim.tick(0);
    const frozen = structuredClone(sim.r);
    const next = applyUpdate(sim.r, 'dev-00', update(sim.r.devices[0]!.commandId!, 'active'), at(1));
    expect(sim.r).toEqual(frozen);
    expect(next.devices[0]!.state).toBe('active');
    expect(applyUpdate(sim.r, 'dev-00', update('other', 'failed'), at(1))).toBe(sim.r);
    expect(applyUpdate(sim.r, 'nobody', update('c1', 'failed'), at(1))).toBe(sim.r);
  });

  it('a finished install stays finished; only a rollback report moves it to rolled_back', () => {
    const sim = new Sim(start(presetSpec('all-at-once'), 1));
    sim.tick(0);
    sim.report('dev-00', 'active', 1);
    sim.report('dev-00', 'downloading', 2);
    expect(sim.state('dev-00')).toBe('active');
    expect(summaryOf(sim.r)).toMatchObject({ total: 1, active: 1 });
  });
});
