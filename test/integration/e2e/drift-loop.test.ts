/**
 * The drift loop end to end, with 3 real agent processes: v1 is trained on distribution A and rolled out;
 * apps send A (no drift is reported), then B: every device reports drift within a bounded number of
 * samples and captures more; the fleet retrains once (not once per device) on the data captured since the
 * drift began; v2 beats v1 on B (on the recent holdout, and on live traffic); v2 canaries to every device;
 * the devices' drift reports return to normal; v2's lineage names the retrain that made it.
 *
 * The world: four features; the label is `pass` when f1 > 2·max(0, f0 − 2). Under A (all features ~N(0,1))
 * that is nearly "f1 > 0", which is what v1 learns; under B (f0, f1 ~N(4,1)) the bend matters, and v1 —
 * which never saw it — answers `pass` for most rows.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededNormals } from '../../../shared/onnx/mlp.js';
import { AgentProcess, enrollAgent } from '../../support/agent-process.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { inferBody } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';

const WINDOW = 100;
const AGENT_ARGS = [
  '--sample-rate',
  '0.05',
  '--drift-sample-rate',
  '1',
  '--drift-window-samples',
  String(WINDOW),
  '--drift-report-interval-ms',
  '1000',
  '--feedback-window-ms',
  '2000',
  '--sample-max-age-ms',
  '200',
];
const CONFIG = { hidden: [24], epochs: 60, batchSize: 32, optimizer: { learningRate: 0.02 }, seed: 7 };

type World = 'A' | 'B';
const truth = (x: number[]) => (x[1]! > 2 * Math.max(0, x[0]! - 2) ? 'pass' : 'fail');

function row(draw: () => number, world: World): number[] {
  const shift = world === 'B' ? 4 : 0;
  return [draw() + shift, draw() + shift, draw(), draw()];
}

function csv(rows: number): string {
  const draw = seededNormals(1);
  const lines = Array.from({ length: rows }, () => {
    const x = row(draw, 'A');
    return [...x.map((v) => v.toFixed(6)), truth(x)].join(',');
  });
  return ['f0,f1,f2,f3,label', ...lines].join('\n');
}

/** Apps on every device: infer, then send the ground truth; answers are scored per model version served. */
function apps(agents: AgentProcess[]) {
  let world: World = 'A';
  let running = true;
  const sentInWorld = new Map<string, number>();
  const score = new Map<string, { right: number; total: number }>(); // `${world}/v${version}`
  const loops = agents.map(async (agent, a) => {
    const draw = seededNormals(1000 + a);
    while (running) {
      const w = world;
      const x = row(draw, w);
      const res = await agent.infer('quality', inferBody(x, 1, 'features', 4)).catch(() => null);
      if (res?.status === 200) {
        sentInWorld.set(`${agent.deviceId}/${w}`, (sentInWorld.get(`${agent.deviceId}/${w}`) ?? 0) + 1);
        const [pFail, pPass] = res.body.outputs[0].data as number[];
        const answer = pPass! > pFail! ? 'pass' : 'fail';
        const key = `${w}/v${res.body.model_version}`;
        const s = score.get(key) ?? { right: 0, total: 0 };
        s.total++;
        if (answer === truth(x)) s.right++;
        score.set(key, s);
        await fetch(`${agent.apiUrl}/v2/models/quality/feedback`, {
          method: 'POST',
          body: JSON.stringify({ id: res.body.id, label: truth(x) }),
        }).catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 4));
    }
  });
  return {
    set world(w: World) {
      world = w;
    },
    sent: (deviceId: string, w: World) => sentInWorld.get(`${deviceId}/${w}`) ?? 0,
    accuracy: (w: World, version: number) => {
      const s = score.get(`${w}/v${version}`);
      return s && s.total > 0 ? { accuracy: s.right / s.total, n: s.total } : null;
    },
    reset: (w: World, version: number) => score.delete(`${w}/v${version}`),
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('drift → retrain → canary → drift clears, with 3 real agents', () => {
  let env: TestFleet;
  const agents: AgentProcess[] = [];
  let load: ReturnType<typeof apps>;

  const driftOf = async () => (await env.api.request('GET', '/api/v1/drift?task=quality')).models[0];
  const verdicts = async (version: number) => {
    const m = await driftOf();
    return agents.map((a) => m?.devices.find((d: any) => d.deviceId === a.deviceId && d.version === version));
  };

  beforeAll(async () => {
    env = await startTestFleet([], { retrainCheckMs: 200 });
    await env.api.request(
      'POST',
      '/api/v1/tasks/quality/import?format=csv&source=world-a.csv',
      new TextEncoder().encode(csv(600)),
    );
    for (let i = 0; i < 3; i++) {
      const { token } = await env.api.enrollmentToken({ tags: { line: 'd' } });
      const dataDir = await mkdtemp(join(tmpdir(), `edgefleet-drift-${i}-`));
      await enrollAgent({ server: env.fleet.httpUrl, token, dataDir });
      agents.push(await AgentProcess.start({ dataDir, telemetryIntervalMs: 500, args: AGENT_ARGS }));
    }
  }, 120_000);

  afterAll(async () => {
    await load?.stop();
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    await env?.close();
  });

  it('v1, trained on A, goes to every device and into production', async () => {
    const run = await env.api.settledRun((await env.api.train('quality', { config: CONFIG })).id);
    expect(run.error).toBeNull();
    const rollout = await env.api.request('POST', '/api/v1/rollouts', {
      model: { name: 'quality', version: 'candidate' },
      targets: { tags: { line: 'd' } },
      strategy: 'all-at-once',
    });
    expect((await env.api.settledRollout(rollout.id)).phase).toBe('succeeded');
    await waitFor(
      async () => (await env.api.request('GET', '/api/v1/models/quality/aliases')).aliases.production,
      'production to move to v1',
    );
    const policy = await env.api.request('PUT', '/api/v1/tasks/quality/retrain-policy', {
      deviceShare: 1,
      forS: 1,
      mode: 'auto',
      margin: 0.1,
      minNewSamples: 300,
      rollout: {
        steps: [34, 100],
        windowS: 3,
        gates: ['activation_failure_share<=0/1', 'error_rate<=0.01/50', 'p95_latency_ratio<=3/50'],
      },
    });
    expect(policy.policy).toMatchObject({ mode: 'auto', trainOn: 'recent', onConcept: true });
  }, 180_000);

  it('on A, every device reports "no drift"', async () => {
    load = apps(agents);
    const reports = await waitFor(
      async () => {
        const v = await verdicts(1);
        return v.every((d) => d?.verdict === 'no_drift') ? v : undefined;
      },
      'every device to report no drift on A',
      60_000,
      200,
    );
    for (const d of reports) expect(d.features.filter((f: any) => f.drifted)).toEqual([]);
    expect(load.accuracy('A', 1)!.accuracy).toBeGreaterThan(0.9);
    expect((await env.api.request('GET', '/api/v1/retrains')).retrains).toEqual([]);
  }, 90_000);

  let retrainId: string;

  it('on B, every device reports drift within two windows, and the fleet retrains once', async () => {
    const before = new Map(agents.map((a) => [a.deviceId, load.sent(a.deviceId, 'B')]));
    load.world = 'B';
    const seenAfter = new Map<string, number>();
    await waitFor(
      async () => {
        const v = await verdicts(1);
        for (const [i, d] of v.entries()) {
          const id = agents[i]!.deviceId;
          if (d?.verdict === 'drift' && !seenAfter.has(id))
            seenAfter.set(id, load.sent(id, 'B') - before.get(id)!);
        }
        return seenAfter.size === agents.length ? true : undefined;
      },
      'every device to report drift on B',
      60_000,
      100,
    );
    // The window in flight at the switch closes mostly on A rows; the next one is all B. What is sent while
    // the report travels and this test polls comes on top.
    console.log(
      `B requests per device before the fleet saw its drift: ${[...seenAfter.values()].join(', ')} (window ${WINDOW})`,
    );
    for (const [id, n] of seenAfter) {
      expect(n, `B requests sent to ${id} before the fleet saw its drift`).toBeLessThanOrEqual(
        2 * WINDOW + 100,
      );
    }
    const m = await driftOf();
    const drifted = m.devices.find((d: any) => d.verdict === 'drift');
    expect(drifted.features.filter((f: any) => f.drifted).map((f: any) => f.name)).toEqual(
      expect.arrayContaining(['f0', 'f1']),
    );
    expect(drifted.captureRate).toBe(1); // raised from 5% while drifting

    const retrain = await waitFor(
      async () => (await env.api.request('GET', '/api/v1/retrains?task=quality')).retrains[0],
      'the retrain to fire',
      60_000,
      200,
    );
    retrainId = retrain.id;
    expect(retrain.trigger).toMatchObject({ kind: 'drift', production: 1, share: 1 });
    expect(retrain.trigger.devices.sort()).toEqual(agents.map((a) => a.deviceId).sort());
    expect(retrain.trigger.reason).toMatch(/3 of 3 devices on quality@1/);
  }, 120_000);

  it('v2 beats v1 on B and canaries to every device; still only one retrain', async () => {
    const done = await waitFor(
      async () => {
        const r = await env.api.request('GET', `/api/v1/retrains/${retrainId}`);
        // Past training and the steps that follow it at once (candidate alias, creating the canary).
        return ['training', 'setting_candidate', 'creating_rollout'].includes(r.status) ? undefined : r;
      },
      'the retrain to finish training',
      120_000,
      250,
    );
    expect(done.error).toBeNull();
    expect(done.status).toBe('rolling_out');
    expect(done.evaluation).toMatchObject({
      metric: 'accuracy',
      on: 'recent_holdout',
      won: true,
      championVersion: 1,
    });
    expect(done.evaluation.challenger).toBeGreaterThanOrEqual(done.evaluation.champion + 0.1);
    const snapshot = await env.api.request('GET', `/api/v1/snapshots/${done.snapshot}`);
    expect(snapshot.since).toBe(done.trigger.driftSince);
    expect(Object.keys(snapshot.bySource).sort()).toEqual(agents.map((a) => a.deviceId).sort());
    expect(done.events.map((e: any) => e.step)).toEqual([
      'triggered',
      'training',
      'trained',
      'evaluated',
      'rollout',
    ]);

    const rollout = await env.api.settledRollout(done.rollout, 120_000);
    expect(rollout.phase).toBe('succeeded');
    expect(rollout.model).toEqual({ name: 'quality', version: done.version });
    const serving = await Promise.all(
      agents.map(
        async (a) => (await env.api.request('GET', `/api/v1/devices/${a.deviceId}`)).models[0]?.version,
      ),
    );
    expect(serving).toEqual([done.version, done.version, done.version]);

    // Live answers on B: v2 right far more often than v1 was.
    const v2 = done.version as number;
    const v2OnB = await waitFor(
      async () => {
        const s = load.accuracy('B', v2);
        return s && s.n >= 300 ? s : undefined;
      },
      'live answers of v2 on B',
      60_000,
      200,
    );
    const v1OnB = load.accuracy('B', 1)!;
    console.log(
      `live accuracy on B: v1 ${v1OnB.accuracy.toFixed(3)} (${v1OnB.n} requests), v${v2} ${v2OnB.accuracy.toFixed(3)} (${v2OnB.n}); ` +
        `recent holdout: ${done.evaluation.detail}`,
    );
    expect(v2OnB.accuracy).toBeGreaterThan(v1OnB.accuracy + 0.1);
    expect((await env.api.request('GET', '/api/v1/retrains')).retrains).toHaveLength(1);
  }, 240_000);

  it('on v2 the drift reports return to normal; v2 lineage names the trigger', async () => {
    const version = (await env.api.request('GET', `/api/v1/retrains/${retrainId}`)).version as number;
    await waitFor(
      async () => {
        const v = await verdicts(version);
        return v.every((d) => d?.verdict === 'no_drift') ? v : undefined;
      },
      'every device to report no drift on v2',
      60_000,
      200,
    );
    const m = await driftOf();
    expect(m.production).toBe(version);
    // The same reports by cohort: every device carries the tag line=d.
    const byLine = (await env.api.request('GET', '/api/v1/drift?task=quality&cohort=tag:line')).models[0]
      .cohorts;
    expect(byLine.find((c: any) => c.version === version)).toMatchObject({
      cohort: 'd',
      devices: 3,
      drifting: 0,
      noDrift: 3,
    });
    const capture = m.devices.filter((d: any) => d.version === version).map((d: any) => d.captureRate);
    expect(capture).toEqual([0.05, 0.05, 0.05]); // back to the base rate
    const v = await env.api.request('GET', `/api/v1/models/quality/versions/${version}`);
    expect(v.lineage.trigger).toMatchObject({ retrain: retrainId, kind: 'drift' });
    expect(v.lineage.recent).toMatchObject({
      since: expect.any(String),
      champion: { accuracy: expect.any(Number) },
    });
    const record = await waitFor(async () => {
      const r = await env.api.request('GET', `/api/v1/retrains/${retrainId}`);
      return r.status === 'completed' ? r : undefined;
    }, 'the retrain to record its canary as completed');
    expect(record.events.at(-1)).toMatchObject({ step: 'completed' });
    // The automatic actions are in the audit trail, beside the operator's calls, and the chain verifies.
    const audit = (await env.api.request('GET', '/api/v1/audit?limit=1000')).entries as any[];
    const retrainSteps = audit.filter((e) => e.target === `retrains/${retrainId}`).map((e) => e.action);
    expect(retrainSteps.reverse()).toEqual([
      'retrain.triggered',
      'retrain.training',
      'retrain.trained',
      'retrain.evaluated',
      'retrain.rollout',
      'retrain.completed',
    ]);
    expect(audit.some((e) => e.actor === 'system:rollouts' && e.action === 'rollout.succeeded')).toBe(true);
    expect((await env.api.request('GET', '/api/v1/audit/verify')).ok).toBe(true);
    expect((await env.api.request('GET', '/api/v1/retrains')).retrains).toHaveLength(1);
  }, 90_000);
});
