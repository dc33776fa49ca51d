/**
 * Progressive rollouts with 10 real agent processes and the fleet server as a real child process, under live
 * inference traffic: a good version goes through every canary step to 100%; a 5x slower one and one that
 * predicts differently are stopped in the first cohort and rolled back automatically, never reaching any other
 * device; blue-green switches only when the shadow gate passes and a disagreeing candidate is never active
 * anywhere; and a SIGKILL of the fleet server mid-canary neither stalls the rollout nor duplicates an install.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentDb } from '../../../agent/store.js';
import { seededMlp } from '../../../shared/onnx/mlp.js';
import { AgentProcess, enrollAgent } from '../../support/agent-process.js';
import { FleetProcess } from '../../support/fleet-process.js';
import { directRun, FEATURES, inferBody, maxAbsDiff, paddedMlp, randomBatch } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';

const AGENTS = 10;
const good = (seed: number) => seededMlp({ seed, sizes: [FEATURES, 64, 64, 2], softmax: true });
/** The same function as good(1), with far more arithmetic per request. */
const slow = () => paddedMlp(1, 64, 1984);

/** Median latency of `model` over `n` single-row runs in this process. */
async function medianLatencyMs(model: Uint8Array, n = 300): Promise<number> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const input = new ort.Tensor('float32', Float32Array.from(randomBatch(1, 1)), [1, FEATURES]);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await session.run({ input });
    times.push(performance.now() - t);
  }
  await session.release();
  return times.sort((a, b) => a - b)[Math.floor(n / 2)]!;
}

/** Keeps every agent busy with single-row requests until stopped. */
function traffic(agents: AgentProcess[]) {
  let running = true;
  let sent = 0;
  let failed = 0;
  const loops = agents.map(async (agent, a) => {
    let i = 0;
    while (running) {
      const res = await agent.infer('clf', inferBody(randomBatch(a * 100_000 + i++, 1), 1)).catch(() => null);
      if (res?.status === 200) sent++;
      else failed++;
      await new Promise((r) => setTimeout(r, 15));
    }
  });
  return {
    get sent() {
      return sent;
    },
    get failed() {
      return failed;
    },
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('progressive rollouts with 10 agents', () => {
  let fleet: FleetProcess;
  const agents: AgentProcess[] = [];
  const dirs: string[] = [];
  let load: ReturnType<typeof traffic>;

  const rolloutOf = async (body: Record<string, unknown>) => {
    const created = await fleet.api.request('POST', '/api/v1/rollouts', {
      targets: { tags: { line: 'p' } },
      windowS: 4,
      ...body,
    });
    return created;
  };
  const settled = (id: string) =>
    waitFor(
      async () => {
        const r = await fleet.api.request('GET', `/api/v1/rollouts/${id}`);
        return ['succeeded', 'failed', 'rolled_back', 'paused'].includes(r.phase) ? r : undefined;
      },
      `rollout ${id} to settle`,
      120_000,
      200,
    );
  const versionsServing = async () =>
    Promise.all(
      agents.map(
        async (a) => (await fleet.api.request('GET', `/api/v1/devices/${a.deviceId}`)).models[0]?.version,
      ),
    );

  beforeAll(async () => {
    const root = await mkdtemp(join(tmpdir(), 'edgefleet-progressive-'));
    fleet = await FleetProcess.start(join(root, 'fleet'));
    for (let i = 0; i < AGENTS; i++) {
      const { token } = await fleet.api.enrollmentToken({ tags: { line: 'p' } });
      const dataDir = join(root, `agent-${i}`);
      await enrollAgent({ server: fleet.httpUrl, token, dataDir });
      dirs.push(dataDir);
    }
    agents.push(
      ...(await Promise.all(
        dirs.map((dataDir) => AgentProcess.start({ dataDir, telemetryIntervalMs: 500 })),
      )),
    );
    await fleet.api.pushModel('clf', good(1));
    const first = await rolloutOf({ model: { name: 'clf', version: 1 }, strategy: 'all-at-once' });
    expect((await settled(first.id)).phase).toBe('succeeded');
    load = traffic(agents);
  }, 180_000);

  afterAll(async () => {
    await load?.stop();
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    await fleet?.stop();
  });

  it('a good version goes through every canary step to 100%', async () => {
    await fleet.api.pushModel('clf', good(1)); // v2: the same function, a new version
    // Ten agents, the fleet and other test files share two cores here: a good version's p95 may differ from
    // the control's by a histogram step or two. The latency gate is widened to 3x for this good version; the
    // slow version below (measured ≥ 5x) meets the default gates.
    const r = await rolloutOf({
      model: { name: 'clf', version: 2 },
      strategy: 'canary',
      steps: [10, 50, 100],
      gates: ['activation_failure_share<=0/1', 'error_rate<=0.01/50', 'p95_latency_ratio<=3/50'],
    });
    const done = await settled(r.id);
    expect(done.phase, JSON.stringify(done.status, null, 1)).toBe('succeeded');
    const steps = done.status.events.filter((e: any) => e.type === 'step').map((e: any) => e.message);
    expect(steps).toEqual([
      expect.stringContaining('shadow 100% on 10% of targets'),
      expect.stringContaining('setPercent 10'),
      expect.stringContaining('analysis'),
      expect.stringContaining('setPercent 50'),
      expect.stringContaining('analysis'),
      expect.stringContaining('setPercent 100'),
    ]);
    expect(done.summary).toMatchObject({ total: AGENTS, active: AGENTS });
    expect(await versionsServing()).toEqual(Array(AGENTS).fill(2));
  });

  it.each([
    ['5x slower', slow, 'p95_latency_ratio'],
    ['predicting differently', () => good(99), 'shadow_agreement'],
  ])(
    'a %s version is stopped in the first cohort and rolled back; no other device receives it',
    async (_, model, gate) => {
      if (gate === 'p95_latency_ratio') {
        // The claim "5x slower" is checked, not assumed.
        expect((await medianLatencyMs(model())) / (await medianLatencyMs(good(1)))).toBeGreaterThanOrEqual(5);
        // ...and it computes the same function, so only the latency gate can stop it.
        const rows = randomBatch(3, 64);
        expect(
          maxAbsDiff(await directRun(model(), rows, 64), await directRun(good(1), rows, 64)),
        ).toBeLessThan(1e-5);
      }
      const pushed = await fleet.api.pushModel('clf', model());
      const r = await rolloutOf({
        model: { name: 'clf', version: pushed.version },
        strategy: 'canary',
        steps: [10, 50, 100],
      });
      const done = await settled(r.id);
      expect(done.phase, JSON.stringify(done.status, null, 1)).toBe('rolled_back');
      expect(done.status.abort.reason.code).toBe('gate_failed');
      expect(done.status.abort.reason.message).toContain(gate);
      const touched = done.devices.filter((d: any) => d.commandId !== null);
      expect(touched).toHaveLength(1);
      expect(touched[0]).toMatchObject({ state: 'rolled_back', reason: { code: 'gate_failed' } });
      expect(done.devices.filter((d: any) => d.state === 'waiting')).toHaveLength(AGENTS - 1);
      expect(await versionsServing()).toEqual(Array(AGENTS).fill(2));
    },
  );

  it('blue-green: a disagreeing candidate is never active anywhere; an agreeing one switches everywhere', async () => {
    const bad = await fleet.api.pushModel('clf', good(77));
    const rejected = await settled(
      (await rolloutOf({ model: { name: 'clf', version: bad.version }, strategy: 'blue-green' })).id,
    );
    expect(rejected.phase).toBe('rolled_back');
    expect(rejected.status.abort.reason.message).toContain('shadow_agreement');
    const agreement = rejected.status.analysis.measurements
      .at(-1)
      .gates.find((g: any) => g.metric === 'shadow_agreement');
    expect(agreement.value).toBeLessThan(0.95);
    expect(agreement.samples).toBeGreaterThanOrEqual(50);
    expect(rejected.devices.every((d: any) => d.state === 'rolled_back')).toBe(true);
    expect(await versionsServing()).toEqual(Array(AGENTS).fill(2));

    const fine = await fleet.api.pushModel('clf', good(1));
    const switched = await settled(
      (await rolloutOf({ model: { name: 'clf', version: fine.version }, strategy: 'blue-green' })).id,
    );
    expect(switched.phase, JSON.stringify(switched.status, null, 1)).toBe('succeeded');
    const passed = switched.status.events.find((e: any) => e.type === 'step');
    expect(passed.message).toContain('shadow');
    expect(await versionsServing()).toEqual(Array(AGENTS).fill(fine.version));
  });

  it('survives a SIGKILL of the fleet server mid-canary: the rollout completes, no install is duplicated', async () => {
    const next = await fleet.api.pushModel('clf', good(1));
    const r = await rolloutOf({
      model: { name: 'clf', version: next.version },
      strategy: 'canary',
      steps: [10, 50, 100],
      shadowFirst: false,
      // What this test is about is the restart, not the gates: installs must succeed in each cohort.
      gates: ['activation_failure_share<=0/1'],
    });
    await waitFor(
      async () => {
        const now = await fleet.api.request('GET', `/api/v1/rollouts/${r.id}`);
        return now.status.analysis && now.summary.active >= 1 ? true : undefined;
      },
      'the first canary analysis to start',
      60_000,
      100,
    );
    await fleet.kill();
    await fleet.restart();
    const done = await settled(r.id);
    expect(done.phase, JSON.stringify(done.status, null, 1)).toBe('succeeded');
    expect(await versionsServing()).toEqual(Array(AGENTS).fill(next.version));
    // On every device, exactly one install record for this rollout: re-sends (same id) were deduplicated,
    // and no second command was ever issued.
    await load.stop();
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    for (const dir of dirs) {
      const db = await AgentDb.open(join(dir, 'db'));
      const records = (await db.updates().all()).filter((u) => u.rolloutId === r.id);
      await db.close();
      expect(records).toHaveLength(1);
      expect(records[0]!.state).toBe('active');
    }
  });
});
