/**
 * The spine, end to end over loopback: a real fleet server (aedes, LevelDB, hono) and three agents as real
 * child processes enroll, receive a pushed model by rollout, and serve exactly what ONNX Runtime computes.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, enrollAgent, expectServes } from '../../support/agent-process.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { directRun, inferBody, mlp, randomBatch } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';

describe('spine: push → rollout → inference on 3 enrolled agents', () => {
  let env: TestFleet;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    env = await startTestFleet();
    const { token } = await env.api.enrollmentToken({ tags: { site: 'lab' } });
    const second = await env.api.enrollmentToken({ tags: { site: 'lab' } });
    const third = await env.api.enrollmentToken({ tags: { site: 'lab' } });
    const tokens = [token, second.token, third.token];
    await Promise.all(
      tokens.map(async (t, i) => {
        const dataDir = await mkdtemp(join(tmpdir(), `edgefleet-agent-${i}-`));
        await enrollAgent({ server: env.fleet.httpUrl, token: t, dataDir });
        agents.push(await AgentProcess.start({ dataDir, telemetryIntervalMs: 300 }));
      }),
    );
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    await env?.close();
  });

  it('enrolled devices show up online', async () => {
    for (const agent of agents) {
      await waitFor(
        async () => (await env.api.device(agent.deviceId)).status === 'online',
        `${agent.deviceId} online`,
      );
    }
    const list = await env.api.request('GET', '/api/v1/devices?tag=site=lab');
    expect(list.devices.map((d: { id: string }) => d.id).sort()).toEqual(
      agents.map((a) => a.deviceId).sort(),
    );
  });

  it('a rolled-out model serves the same numbers as a direct ONNX Runtime run', async () => {
    const model = mlp(7);
    const pushed = await env.api.pushModel('classifier', model);
    expect(pushed.version).toBe(1);

    const rollout = await env.api.createRollout('classifier', 1, { tags: { site: 'lab' } });
    const settled = await env.api.settledRollout(rollout.id);
    expect(settled.phase, JSON.stringify(settled.devices)).toBe('succeeded');
    expect(settled.devices.map((d: { state: string }) => d.state)).toEqual(['active', 'active', 'active']);

    const rows = 8;
    const data = randomBatch(42, rows);
    const expected = await directRun(model, data, rows);
    for (const agent of agents) await expectServes(agent, 'classifier', { version: 1, data, rows, expected });
  });

  it('the fleet sees each device running v1 on the CPU provider, with telemetry', async () => {
    for (const agent of agents) {
      const device = await waitFor(async () => {
        const d = await env.api.device(agent.deviceId);
        return d.models.some((m: { version: number }) => m.version === 1) && d.telemetry ? d : undefined;
      }, `${agent.deviceId} to report v1 and telemetry`);
      expect(device.models).toEqual([
        { name: 'classifier', version: 1, executionProvider: 'cpu', providersSkipped: [] },
      ]);
      expect(device.telemetry.process.rssBytes).toBeGreaterThan(0);
    }
    // Telemetry counts requests per window: keep sending until a window with a counted request arrives.
    const agent = agents[0]!;
    const probe = inferBody(randomBatch(3, 1), 1);
    const device = await waitFor(async () => {
      await agent.infer('classifier', probe);
      const d = await env.api.device(agent.deviceId);
      const m = d.telemetry?.models?.find((x: { name: string }) => x.name === 'classifier');
      return m && m.requests >= 1 ? d : undefined;
    }, 'telemetry with a counted request');
    expect(device.telemetry.models[0].latencyMs.p50).toBeGreaterThan(0);
  });

  it('inference requests with a wrong shape get a 400 that says what was expected', async () => {
    const res = await agents[0]!.infer('classifier', {
      inputs: [{ name: 'input', shape: [1, 31], datatype: 'FP32', data: randomBatch(1, 1, 31) }],
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/32/);
  });
});
