/**
 * A device that dies while the fleet server is down (its last will has no broker to go to) still gets a
 * rollout created after the restart: the restarted fleet knows nobody is connected to its fresh broker,
 * so the device's first status counts as coming online and its unfinished install is re-sent.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, enrollAgent } from '../../support/agent-process.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { inferBody, mlp, randomBatch } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';

describe('a device that was offline when its rollout was created catches up', () => {
  let env: TestFleet;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    env = await startTestFleet();
  });
  afterAll(async () => {
    await agent?.kill('SIGTERM');
    await env?.close();
  });

  it('across a fleet-server restart, it installs once back and the rollout succeeds', async () => {
    const { token } = await env.api.enrollmentToken({ tags: { site: 'remote' } });
    const dataDir = await mkdtemp(join(tmpdir(), 'edgefleet-offline-'));
    const deviceId = await enrollAgent({ server: env.fleet.httpUrl, token, dataDir });
    agent = await AgentProcess.start({ dataDir });
    await waitFor(
      async () => (await env.api.device(deviceId)).status === 'online',
      'the device to come online',
    );

    // The fleet goes down; the device dies meanwhile, so no offline status ever reaches the fleet.
    const running = agent;
    await env.restart(() => running.kill('SIGKILL'));
    await env.api.pushModel('remote', mlp(31));
    const rollout = await env.api.createRollout('remote', 1, { tags: { site: 'remote' } });
    expect((await env.api.rollout(rollout.id)).devices[0].state).toBe('pending');

    agent = await AgentProcess.start({ dataDir });
    const settled = await env.api.settledRollout(rollout.id, 30_000);
    expect(settled.phase, JSON.stringify(settled.devices)).toBe('succeeded');
    const res = await agent.infer('remote', inferBody(randomBatch(1, 1), 1));
    expect(res.status).toBe(200);
    expect(res.body.model_version).toBe('1');
  });
});
