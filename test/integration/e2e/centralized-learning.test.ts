/**
 * Centralized learning end to end, with real agent processes: a task bootstrapped from a CSV trains v1 on
 * the fleet; v1 rolls out to 3 agents (and becomes production); apps call infer and send feedback; every
 * captured sample arrives in the pool — counted exactly per device — even though the broker (the fleet
 * server) restarts in the middle while the agents keep serving and capturing; a snapshot is taken; v2 trains
 * on it, compared with v1 on the same holdout; its lineage names the snapshot, the snapshot names the devices;
 * v2 rolls out and becomes production.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, enrollAgent } from '../../support/agent-process.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { FEATURES, inferBody, randomBatch } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';

// Feedback is attached while a sample waits out its window; a generous window keeps a loaded CI machine from
// turning feedback into late feedback. Labels are counted from the agents' answers either way.
const CAPTURE_ARGS = ['--sample-rate', '1', '--feedback-window-ms', '2000', '--sample-max-age-ms', '200'];
const CONFIG = { hidden: [16], epochs: 10, batchSize: 16, optimizer: { learningRate: 0.01 } };

/** The world's rule, which devices' feedback follows too. */
const truth = (row: number[]) => (row[0]! + row[1]! - row[2]! > 0 ? 'pass' : 'fail');

function csv(rows: number): string {
  const header = [...Array.from({ length: FEATURES }, (_, i) => `f${i}`), 'label'].join(',');
  const data = randomBatch(9, rows);
  const lines = Array.from({ length: rows }, (_, r) => {
    const row = data.slice(r * FEATURES, (r + 1) * FEATURES);
    return [...row, truth(row)].join(',');
  });
  return [header, ...lines].join('\n');
}

describe('centralized learning: CSV → train v1 → roll out → capture → snapshot → train v2 → roll out', () => {
  let env: TestFleet;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    env = await startTestFleet();
    const imported = await env.api.request(
      'POST',
      '/api/v1/tasks/quality/import?format=csv&source=seed.csv',
      new TextEncoder().encode(csv(120)),
    );
    expect(imported).toMatchObject({
      created: true,
      accepted: 120,
      task: { model: 'quality', classes: ['fail', 'pass'] },
    });
    for (let i = 0; i < 3; i++) {
      const { token } = await env.api.enrollmentToken({ tags: { line: 'a' } });
      const dataDir = await mkdtemp(join(tmpdir(), `edgefleet-learning-${i}-`));
      await enrollAgent({ server: env.fleet.httpUrl, token, dataDir });
      agents.push(await AgentProcess.start({ dataDir, args: CAPTURE_ARGS }));
    }
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    await env?.close();
  });

  let v1Run: any;

  it('trains v1 from the imported CSV and rolls the candidate out; production follows', async () => {
    v1Run = await env.api.settledRun((await env.api.train('quality', { config: CONFIG })).id);
    expect(v1Run.error).toBeNull();
    expect(v1Run.result.version).toBe(1);
    const rollout = await env.api.request('POST', '/api/v1/rollouts', {
      model: { name: 'quality', version: 'candidate' },
      targets: { tags: { line: 'a' } },
    });
    expect(rollout.model).toEqual({ name: 'quality', version: 1 });
    expect((await env.api.settledRollout(rollout.id)).phase).toBe('succeeded');
    const aliases = await waitFor(async () => {
      const a = (await env.api.request('GET', '/api/v1/models/quality/aliases')).aliases;
      return a.production ? a : undefined;
    }, 'production to move to v1');
    expect(aliases.production).toMatchObject({ version: 1, updatedBy: `rollout:${rollout.id}` });
  });

  let snapshot: any;

  it('every captured request arrives once, labeled where feedback came in time', async () => {
    const sent = new Map<string, number>();
    const labeled = new Map<string, number>();
    const callAll = async (round: number, perAgent: number) => {
      await Promise.all(
        agents.map(async (agent, a) => {
          for (let i = 0; i < perAgent; i++) {
            const row = randomBatch(1000 * round + 100 * a + i, 1);
            const res = await agent.infer('quality', inferBody(row, 1, 'features'));
            expect(res.status).toBe(200);
            sent.set(agent.deviceId, (sent.get(agent.deviceId) ?? 0) + 1);
            if (i % 3 !== 2) {
              const fb = await fetch(`${agent.apiUrl}/v2/models/quality/feedback`, {
                method: 'POST',
                body: JSON.stringify({ id: res.body.id, label: truth(row) }),
              });
              const answer = (await fb.json()) as { id: string; captured: boolean };
              expect(answer).toEqual({ id: res.body.id, captured: expect.any(Boolean) });
              if (answer.captured) labeled.set(agent.deviceId, (labeled.get(agent.deviceId) ?? 0) + 1);
            }
          }
        }),
      );
    };

    await callAll(1, 12);
    // The broker goes away with the fleet server; agents keep serving and capturing meanwhile.
    await env.restart(() => callAll(2, 9));
    await callAll(3, 6);

    const stats = await waitFor(
      async () => {
        const task = await env.api.request('GET', '/api/v1/tasks/quality');
        const bySource = task.stats.acceptedBySource;
        return agents.every((a) => bySource[a.deviceId] === sent.get(a.deviceId)) ? task.stats : undefined;
      },
      'every device sample to reach the pool',
      60_000,
      200,
    );
    for (const agent of agents) {
      expect(stats.acceptedBySource[agent.deviceId]).toBe(27);
      expect(stats.rejectedBySource[agent.deviceId]).toBeUndefined();
    }
    expect(stats.samples).toBe(120 + 81);
    const totalLabeled = [...labeled.values()].reduce((a, b) => a + b, 0);
    expect(totalLabeled).toBeGreaterThan(0);
    expect(stats.labeled).toBe(120 + totalLabeled);

    snapshot = await env.api.request('POST', '/api/v1/tasks/quality/snapshots');
    expect(snapshot).toMatchObject({ count: 201, labeled: 120 + totalLabeled });
    for (const agent of agents) expect(snapshot.bySource[agent.deviceId]).toBe(27);
  });

  it('trains v2 on the snapshot: lineage names the snapshot, the snapshot names the devices', async () => {
    const run = await env.api.settledRun(
      (await env.api.train('quality', { snapshot: snapshot.id, config: CONFIG })).id,
    );
    expect(run.error).toBeNull();
    expect(run.result.version).toBe(2);
    // The champion (production v1) was scored on v2's holdout.
    expect(run.result.champion.version).toBe(1);
    expect(run.result.champion.metrics.rows).toBe(run.result.holdoutRows);

    const v2 = await env.api.request('GET', '/api/v1/models/quality/versions/2');
    expect(v2.lineage).toMatchObject({ snapshot: snapshot.id, run: run.id, task: 'quality' });
    const lineage = await env.api.request('GET', '/api/v1/models/quality/versions/2/lineage');
    expect(lineage.snapshot.id).toBe(snapshot.id);
    expect(lineage.sources).toEqual(
      expect.arrayContaining([
        { source: 'import:seed.csv', kind: 'import', samples: 120 },
        ...agents.map((a) => ({ source: a.deviceId, kind: 'device', samples: 27 })),
      ]),
    );
    expect(lineage.sources).toHaveLength(4);
    const v1Lineage = await env.api.request('GET', '/api/v1/models/quality/versions/1/lineage');
    expect(v1Lineage.rollouts).toEqual([expect.objectContaining({ phase: 'succeeded' })]);
    expect(v1Lineage.version.aliases).toEqual(['production']);
  });

  it('v2 rolls out to the 3 agents and becomes production', async () => {
    const rollout = await env.api.createRollout('quality', 2, { tags: { line: 'a' } });
    const settled = await env.api.settledRollout(rollout.id);
    expect(settled.phase).toBe('succeeded');
    expect(settled.summary).toMatchObject({ total: 3, active: 3 });
    for (const agent of agents) {
      const res = await agent.infer('quality', inferBody(randomBatch(5, 1), 1, 'features'));
      expect(res.status).toBe(200);
      expect(res.body.model_version).toBe('2');
    }
    await waitFor(
      async () =>
        (await env.api.request('GET', '/api/v1/models/quality/aliases')).aliases.production.version === 2 ||
        undefined,
      'production to move to v2',
    );
  });
});
