/**
 * The retrain loop's decisions, with real LevelDB records and real drift reports; training, the registry
 * and rollouts are stand-ins that record what they were asked (the whole loop with real parts is
 * test/integration/e2e/drift-loop.test.ts). Covers: threshold and duration, one retrain however many devices
 * drift, cooldown, waiting for new data, concept drift, manual triggers, approval, the evaluation rule, and
 * bad policies.
 */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DriftReports } from '../../../../fleet-server/drift/reports.js';
import { evaluate } from '../../../../fleet-server/retrain/evaluate.js';
import { RetrainLoop } from '../../../../fleet-server/retrain/loop.js';
import type { RetrainPolicyInput } from '../../../../fleet-server/retrain/record.js';
import type { Metrics } from '../../../../fleet-server/training/metrics.js';
import { ConflictError, NotFoundError, ValidationError } from '../../../../shared/errors.js';
import type { DriftMessage } from '../../../../shared/protocol/messages.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';

const acc = (accuracy: number, rows = 100): Metrics => ({
  kind: 'classification',
  rows,
  accuracy,
  macroF1: accuracy,
  logLoss: 0.5,
});

function driftReport(
  deviceId: string,
  verdict: 'drift' | 'no_drift',
  heldMs: number,
  concept = false,
): DriftMessage {
  return {
    v: 1,
    type: 'drift',
    id: `${deviceId}-${Math.random()}`,
    ts: 10_000_000,
    model: { name: 'clf', version: 1 },
    cause: 'schedule',
    verdict,
    verdictSince: 10_000_000 - heldMs,
    window: { startedAt: 0, endedAt: 1, samples: 500, closedBy: 'count' },
    driftedShare: verdict === 'drift' ? 1 : 0,
    features: [],
    prediction: null,
    concept: {
      labeled: 10,
      meanLoss: 0.1,
      drifted: concept,
      detections: { pageHinkley: concept ? 1 : 0, adwin: 0 },
    },
    dropped: 0,
    captureRate: 0.25,
  };
}

describe('RetrainLoop', () => {
  let store: TempStore;
  let clock: ReturnType<typeof manualClock>;
  let drift: DriftReports;
  let loop: RetrainLoop;
  let trainCalls: { task: string; request: Record<string, unknown>; trigger: unknown; options: unknown }[];
  let rolloutCalls: { id: string; model: unknown; targets: unknown; spec: { steps: unknown[] } }[];
  /** What the rollouts stand-in lists; tests replace it to play a canary's progress. */
  let rolloutList: () => Promise<unknown[]>;
  /** Awaited before a run reports settled; tests replace it to hold training back. */
  let trainingGate: Promise<void>;
  let aliases: [string, number][];
  let audited: { actor: string; action: string; target: string }[];
  let trainResult: { version: number; metrics: Metrics; champion: unknown; recent: unknown };
  let newSamples: number;
  const devices = ['d1', 'd2', 'd3', 'd4'];

  beforeEach(async () => {
    store = await openTempStore();
    clock = manualClock();
    drift = new DriftReports(
      store.db.collection('drift-latest'),
      store.db.collection('drift-history'),
      clock,
    );
    trainCalls = [];
    rolloutCalls = [];
    aliases = [];
    audited = [];
    newSamples = 1000;
    rolloutList = async () => [
      { model: { name: 'clf' }, status: { phase: 'succeeded' }, targets: { tags: { line: 'a' } } },
    ];
    trainingGate = Promise.resolve();
    let runIds = 0;
    let rolloutIds = 0;
    trainResult = {
      version: 2,
      metrics: acc(0.9),
      champion: { version: 1, metrics: acc(0.7), reason: null, recentMetrics: acc(0.6, 50) },
      recent: { rows: 50, metrics: acc(0.92, 50) },
    };
    const task = { name: 'quality', model: 'clf', kind: 'classification' };
    loop = new RetrainLoop(store.db.collection('retrain-policies'), store.db.collection('retrains'), {
      pool: {
        getTask: async (name: string) => {
          if (name !== 'quality') throw new NotFoundError('task', name);
          return task;
        },
        labeledSince: async () => newSamples,
      },
      training: {
        start: async (
          t: string,
          request: Record<string, unknown>,
          _actor: string,
          trigger: unknown,
          options: unknown,
        ) => {
          trainCalls.push({ task: t, request, trigger, options });
          return { id: (options as { id: string }).id, snapshot: `snap-${trainCalls.length}` };
        },
        newId: () => `run-${++runIds}`,
        settled: async (id: string) => {
          await trainingGate;
          return { id, status: 'succeeded', result: trainResult, error: null };
        },
      },
      models: {
        resolve: async () => ({ version: 1 }),
        setAlias: async (_m: string, alias: string, version: number) => {
          aliases.push([alias, version]);
          return { moved: true };
        },
      },
      rollouts: {
        list: () => rolloutList(),
        newId: () => `ro-${++rolloutIds}`,
        create: async (request: {
          id: string;
          model: unknown;
          targets: unknown;
          spec: { steps: unknown[] };
        }) => {
          rolloutCalls.push(request);
          return { id: request.id };
        },
      },
      devices: { list: async () => devices.map((id) => ({ id, models: [{ name: 'clf', version: 1 }] })) },
      drift,
      audit: {
        append: async (entry: { actor: string; action: string; target: string }) => {
          audited.push(entry);
        },
      },
      now: clock.now,
      log: pino({ level: 'silent' }),
    } as unknown as ConstructorParameters<typeof RetrainLoop>[2]);
  });
  afterEach(async () => {
    await loop.close();
    await store.close();
  });

  const policy = (p: RetrainPolicyInput = {}) =>
    loop.setPolicy(
      'quality',
      { deviceShare: 0.5, forS: 60, cooldownS: 3600, mode: 'auto', minNewSamples: 100, ...p },
      'alice',
    );
  const settle = async () => {
    loop.check();
    await loop.idle();
  };

  it('fires once when enough devices have drifted for long enough — not once per device', async () => {
    await policy();
    await drift.record('d1', driftReport('d1', 'drift', 120_000));
    await settle();
    expect(trainCalls).toHaveLength(0); // 1 of 4 is below half
    await drift.record('d2', driftReport('d2', 'drift', 30_000));
    await settle();
    expect(trainCalls).toHaveLength(0); // d2 has not drifted for 60 s yet
    clock.advance(30_000);
    await drift.record('d3', driftReport('d3', 'drift', 600_000));
    await drift.record('d4', driftReport('d4', 'drift', 600_000));
    await settle();
    await settle();
    expect(trainCalls).toHaveLength(1);
    const [record] = await loop.list('quality');
    expect(record!.trigger).toMatchObject({
      kind: 'drift',
      production: 1,
      share: 1,
      actor: 'retrain-policy',
    });
    expect(record!.trigger.devices.sort()).toEqual(devices);
    expect(record!.trigger.reason).toMatch(/4 of 4 devices on clf@1 \(100%\)/);
    // Trained on the data since the earliest drift, and judged on it.
    expect(trainCalls[0]!.request).toEqual({
      since: record!.trigger.driftSince,
      recentSince: record!.trigger.driftSince,
    });
    expect(trainCalls[0]!.trigger).toMatchObject({ retrain: record!.id, kind: 'drift' });
    expect(trainCalls[0]!.options).toEqual({ setCandidate: false, id: record!.run });
    expect(record).toMatchObject({
      status: 'rolling_out',
      snapshot: 'snap-1',
      run: 'run-1',
      version: 2,
      rollout: 'ro-1',
    });
    expect(record!.evaluation).toMatchObject({
      on: 'recent_holdout',
      challenger: 0.92,
      champion: 0.6,
      won: true,
    });
    expect(record!.events.map((e) => e.step)).toEqual([
      'triggered',
      'training',
      'trained',
      'evaluated',
      'rollout',
    ]);
    expect(aliases).toEqual([['candidate', 2]]);
    // The canary goes where production went, without a shadow step (the challenger is meant to disagree).
    expect(rolloutCalls[0]).toMatchObject({
      model: { name: 'clf', version: 2 },
      targets: { tags: { line: 'a' } },
    });
    expect(rolloutCalls[0]!.spec.steps.some((s) => 'shadow' in (s as object))).toBe(false);

    // Still drifting right after: the cooldown holds the next trigger back; after it, it may fire again.
    await settle();
    expect(trainCalls).toHaveLength(1);
    clock.advance(3_600_000);
    await settle();
    expect(trainCalls).toHaveLength(2);
  });

  it('waits for enough new labeled data before it retrains', async () => {
    await policy({ minNewSamples: 500 });
    newSamples = 120;
    for (const d of devices) await drift.record(d, driftReport(d, 'drift', 600_000));
    await settle();
    expect(trainCalls).toHaveLength(0);
    newSamples = 500;
    await settle();
    expect(trainCalls).toHaveLength(1);
  });

  it('fires on concept drift when the policy says so', async () => {
    await policy({ onConcept: false });
    await drift.record('d1', driftReport('d1', 'no_drift', 0, true));
    await settle();
    expect(trainCalls).toHaveLength(0);
    await policy({ onConcept: true });
    await settle();
    expect(trainCalls).toHaveLength(1);
    expect((await loop.list())[0]!.trigger).toMatchObject({ kind: 'concept', devices: ['d1'] });
  });

  it('by policy "approve", a winner waits for an operator; a loser is rejected and never becomes candidate', async () => {
    await policy({ mode: 'approve' });
    const record = await loop.trigger('quality', 'bob', 'the line was rebuilt');
    await loop.idle();
    const waiting = await loop.get(record.id);
    expect(waiting).toMatchObject({
      status: 'awaiting_approval',
      trigger: { kind: 'manual', actor: 'bob', reason: 'the line was rebuilt' },
    });
    expect(rolloutCalls).toHaveLength(0);
    const approved = await loop.approve(record.id, 'carol');
    expect(approved).toMatchObject({ status: 'rolling_out', approvedBy: 'carol', rollout: 'ro-1' });
    await expect(loop.approve(record.id, 'carol')).rejects.toThrow(ConflictError);

    trainResult = { ...trainResult, recent: { rows: 50, metrics: acc(0.605, 50) } };
    const loser = await loop.trigger('quality', 'bob');
    await loop.idle();
    expect(await loop.get(loser.id)).toMatchObject({ status: 'rejected', evaluation: { won: false } });
    expect(aliases).toEqual([['candidate', 2]]); // only the winner moved it
  });

  it('runs one retrain per task at a time, manual or not', async () => {
    await policy();
    let release!: () => void;
    trainingGate = new Promise<void>((r) => {
      release = r;
    });
    await loop.trigger('quality', 'bob');
    await expect(loop.trigger('quality', 'bob')).rejects.toThrow(/still training/);
    for (const d of devices) await drift.record(d, driftReport(d, 'drift', 600_000));
    loop.check();
    release();
    await loop.idle();
    expect(trainCalls).toHaveLength(1);
  });

  it("follows its canary to the end: completed, or rollout_failed with the rollout's reason", async () => {
    await policy();
    const first = await loop.trigger('quality', 'bob');
    await loop.idle();
    expect((await loop.get(first.id)).status).toBe('rolling_out');
    rolloutList = async () => [
      { id: 'ro-1', model: { name: 'clf' }, status: { phase: 'progressing', abort: null } },
    ];
    await settle();
    expect((await loop.get(first.id)).status).toBe('rolling_out');
    rolloutList = async () => [
      { id: 'ro-1', model: { name: 'clf' }, status: { phase: 'succeeded', abort: null }, targets: {} },
    ];
    await settle();
    expect(await loop.get(first.id)).toMatchObject({ status: 'completed' });
    expect((await loop.get(first.id)).events.at(-1)!.message).toMatch(
      /rollout ro-1 succeeded: clf@2 runs on every target/,
    );

    const second = await loop.trigger('quality', 'bob');
    await loop.idle();
    rolloutList = async () => [
      {
        id: 'ro-2',
        model: { name: 'clf' },
        status: {
          phase: 'rolled_back',
          abort: { reason: { code: 'gate_failed', message: 'error_rate 0.2 not <= 0.01' } },
        },
        targets: {},
      },
    ];
    await settle();
    expect(await loop.get(second.id)).toMatchObject({ status: 'rollout_failed' });
    expect((await loop.get(second.id)).events.at(-1)!.message).toBe(
      'rollout ro-2 ended rolled_back: error_rate 0.2 not <= 0.01',
    );
  });

  it("audits every step of its history as system:retrain, the canary's end included", async () => {
    await policy();
    const { id } = await loop.trigger('quality', 'bob');
    await loop.idle();
    rolloutList = async () => [
      { id: 'ro-1', model: { name: 'clf' }, status: { phase: 'succeeded', abort: null }, targets: {} },
    ];
    await settle();
    const record = await loop.get(id);
    expect(record.status).toBe('completed');
    expect(audited.filter((e) => e.target === `retrains/${id}`).map((e) => e.action)).toEqual(
      record.events.map((e) => `retrain.${e.step}`),
    );
    expect(audited.every((e) => e.actor === 'system:retrain')).toBe(true);
  });

  it('refuses bad policies with the reason, and unknown tasks', async () => {
    await expect(policy({ deviceShare: 2 })).rejects.toThrow(ValidationError);
    await expect(policy({ rollout: { steps: [10, 50] } })).rejects.toThrow(/steps must end at 100/);
    await expect(policy({ unknown: 1 } as RetrainPolicyInput)).rejects.toThrow(/unknown|Unrecognized/i);
    await expect(loop.setPolicy('nope', {}, 'alice')).rejects.toThrow(NotFoundError);
    await expect(loop.policy('quality')).rejects.toThrow(NotFoundError);
  });
});

describe('evaluate', () => {
  const champion = (metrics: Metrics | null, recentMetrics: Metrics | null = null) => ({
    version: 1,
    metrics,
    reason: metrics ? null : 'not comparable',
    recentMetrics,
  });

  it('judges on the recent holdout when it has enough rows, else on the whole holdout', () => {
    const recent = evaluate(
      {
        version: 2,
        metrics: acc(0.8),
        champion: champion(acc(0.85), acc(0.5, 30)),
        recent: { rows: 30, metrics: acc(0.9, 30) },
      },
      { margin: 0.05, minRecentRows: 20 },
    );
    expect(recent).toMatchObject({
      on: 'recent_holdout',
      rows: 30,
      challenger: 0.9,
      champion: 0.5,
      won: true,
    });
    const whole = evaluate(
      {
        version: 2,
        metrics: acc(0.8),
        champion: champion(acc(0.85), acc(0.5, 10)),
        recent: { rows: 10, metrics: acc(0.9, 10) },
      },
      { margin: 0.05, minRecentRows: 20 },
    );
    expect(whole).toMatchObject({ on: 'holdout', rows: 100, challenger: 0.8, champion: 0.85, won: false });
  });

  it('needs the margin; RMSE wins by going down; no comparable champion lets the challenger through', () => {
    expect(
      evaluate(
        { version: 2, metrics: acc(0.86), champion: champion(acc(0.85)) },
        { margin: 0.02, minRecentRows: 20 },
      ).won,
    ).toBe(false);
    const rmse = (v: number): Metrics => ({ kind: 'regression', rows: 100, rmse: v, mae: v });
    expect(
      evaluate(
        { version: 2, metrics: rmse(1.0), champion: champion(rmse(1.5)) },
        { margin: 0.2, minRecentRows: 20 },
      ),
    ).toMatchObject({
      metric: 'rmse',
      won: true,
    });
    expect(
      evaluate(
        { version: 2, metrics: rmse(1.4), champion: champion(rmse(1.5)) },
        { margin: 0.2, minRecentRows: 20 },
      ).won,
    ).toBe(false);
    expect(
      evaluate(
        { version: 2, metrics: acc(0.5), champion: champion(null) },
        { margin: 0.2, minRecentRows: 20 },
      ),
    ).toMatchObject({
      won: true,
      champion: null,
      detail: expect.stringMatching(/no comparable champion \(not comparable\)/),
    });
  });
});
