/**
 * Centralized learning's data path, end to end: a task bootstrapped from a CSV, its model rolled out to 3
 * agent processes, apps calling infer and sending feedback, and every captured sample arriving in the pool
 * — counted exactly per device — even though the broker (the fleet server) restarts in the middle while the
 * agents keep serving and capturing.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, enrollAgent } from '../../support/agent-process.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { FEATURES, inferBody, mlp, randomBatch } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';

const CAPTURE_ARGS = ['--sample-rate', '1', '--feedback-window-ms', '300', '--sample-max-age-ms', '200'];

function csv(rows: number): string {
  const header = [...Array.from({ length: FEATURES }, (_, i) => `f${i}`), 'label'].join(',');
  const data = randomBatch(9, rows);
  const lines = Array.from({ length: rows }, (_, r) =>
    [...data.slice(r * FEATURES, (r + 1) * FEATURES), r % 2 ? 'pass' : 'fail'].join(','),
  );
  return [header, ...lines].join('\n');
}

describe('captured samples reach the pool exactly, across a broker restart', () => {
  let env: TestFleet;
  const agents: AgentProcess[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    env = await startTestFleet();
    const imported = await env.api.request(
      'POST',
      '/api/v1/tasks/quality/import?format=csv&source=seed.csv',
      new TextEncoder().encode(csv(40)),
    );
    expect(imported).toMatchObject({
      created: true,
      accepted: 40,
      task: { model: 'quality', classes: ['fail', 'pass'] },
    });
    for (let i = 0; i < 3; i++) {
      const { token } = await env.api.enrollmentToken({ tags: { line: 'a' } });
      const dataDir = await mkdtemp(join(tmpdir(), `edgefleet-pool-${i}-`));
      await enrollAgent({ server: env.fleet.httpUrl, token, dataDir });
      dirs.push(dataDir);
      agents.push(await AgentProcess.start({ dataDir, args: CAPTURE_ARGS }));
    }
    await env.api.pushModel('quality', mlp(77));
    const rollout = await env.api.createRollout('quality', 1, { tags: { line: 'a' } });
    expect((await env.api.settledRollout(rollout.id)).phase).toBe('succeeded');
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    await env?.close();
  });

  it('every captured request arrives once, labeled where feedback came in time', async () => {
    const sent = new Map<string, number>();
    const labeled = new Map<string, number>();
    const callAll = async (round: number, perAgent: number) => {
      await Promise.all(
        agents.map(async (agent, a) => {
          for (let i = 0; i < perAgent; i++) {
            const res = await agent.infer(
              'quality',
              inferBody(randomBatch(1000 * round + 100 * a + i, 1), 1),
            );
            expect(res.status).toBe(200);
            sent.set(agent.deviceId, (sent.get(agent.deviceId) ?? 0) + 1);
            if (i % 3 === 0) {
              const fb = await fetch(`${agent.apiUrl}/v2/models/quality/feedback`, {
                method: 'POST',
                body: JSON.stringify({ id: res.body.id, label: i % 2 ? 'pass' : 'fail' }),
              });
              expect(await fb.json()).toEqual({ id: res.body.id, captured: true });
              labeled.set(agent.deviceId, (labeled.get(agent.deviceId) ?? 0) + 1);
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
    expect(stats.samples).toBe(40 + 81);
    const totalLabeled = [...labeled.values()].reduce((a, b) => a + b, 0);
    expect(stats.labeled).toBe(40 + totalLabeled);

    const snapshot = await env.api.request('POST', '/api/v1/tasks/quality/snapshots');
    for (const agent of agents) expect(snapshot.bySource[agent.deviceId]).toBe(27);
  });
});
