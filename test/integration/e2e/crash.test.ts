/**
 * Crash safety: an agent SIGKILLed in each update state serves a valid model after restart, and the fleet
 * sees where the update ended. The agent's fault hook (EDGEFLEET_FAULT_HANG_AT) parks it right after the
 * state is persisted; the kill is a real SIGKILL from outside.
 */
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, enrollAgent } from '../../support/agent-process.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { directRun, inferBody, maxAbsDiff, mlp, randomBatch } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';

const STATES = ['downloading', 'verifying', 'staged', 'loading', 'activating'] as const;

describe('crash safety of the update state machine', () => {
  let env: TestFleet;
  let dataDir: string;
  let deviceId: string;
  let agent: AgentProcess | undefined;
  const rows = 4;
  const data = randomBatch(99, rows);

  beforeAll(async () => {
    env = await startTestFleet();
    const { token } = await env.api.enrollmentToken();
    dataDir = await mkdtemp(join(tmpdir(), 'edgefleet-crash-'));
    deviceId = await enrollAgent({ server: env.fleet.httpUrl, token, dataDir });
    agent = await AgentProcess.start({ dataDir });
    // A model large enough that the download spans several chunks (the hang in `downloading` comes after
    // the first chunk is on disk, so the restart must resume a partial file).
    await env.api.pushModel('crashy', mlp(1001, 512));
    const first = await env.api.createRollout('crashy', 1, { devices: [deviceId] });
    expect((await env.api.settledRollout(first.id)).phase).toBe('succeeded');
  });

  afterAll(async () => {
    await agent?.kill('SIGTERM');
    await env?.close();
  });

  // Version v is built from seed 1000 + v, so every case knows the previous model's exact outputs.
  it.each(STATES.map((state, i) => ({ state, version: i + 2 })))(
    'killed while $state, it recovers and the fleet sees v$version active',
    async ({ state, version }) => {
      const model = mlp(1000 + version, 512);
      const previous = mlp(1000 + version - 1, 512);
      const pushed = await env.api.pushModel('crashy', model);
      expect(pushed.version).toBe(version);

      await agent!.kill('SIGTERM');
      agent = await AgentProcess.start({ dataDir, env: { EDGEFLEET_FAULT_HANG_AT: state } });
      const rollout = await env.api.createRollout('crashy', version, { devices: [deviceId] });
      await agent.waitForLine(new RegExp(`^fault: hanging at ${state}$`), `the agent to park in ${state}`);

      // While parked, the previous model still answers.
      const during = await agent.infer('crashy', inferBody(data, rows));
      expect(during.status).toBe(200);
      expect(
        maxAbsDiff(during.body.outputs[0].data, await directRun(previous, data, rows)),
      ).toBeLessThanOrEqual(1e-6);

      if (state === 'downloading') {
        // Killed mid-download: a partial file is on disk, so the restart must resume it (HTTP Range).
        const partial = await stat(join(dataDir, 'downloads', `${pushed.artifact.sha256}.part`));
        expect(partial.size).toBeGreaterThan(0);
        expect(partial.size).toBeLessThan(pushed.artifact.size);
      }

      await agent.kill('SIGKILL');
      agent = await AgentProcess.start({ dataDir });

      // Right after restart the agent serves a valid model: the old one or the new one, never garbage.
      const after = await agent.infer('crashy', inferBody(data, rows));
      expect(after.status, JSON.stringify(after.body)).toBe(200);
      const expectedOld = await directRun(previous, data, rows);
      const expectedNew = await directRun(model, data, rows);
      const served = after.body.outputs[0].data as number[];
      expect(Math.min(maxAbsDiff(served, expectedOld), maxAbsDiff(served, expectedNew))).toBeLessThanOrEqual(
        1e-6,
      );

      // The update completes after recovery and the fleet sees its final state.
      const settled = await env.api.settledRollout(rollout.id);
      expect(settled.devices[0].state, JSON.stringify(settled.devices[0])).toBe('active');
      await waitFor(
        async () =>
          (await env.api.device(deviceId)).models.some((m: { version: number }) => m.version === version),
        `the fleet to see v${version} active on ${deviceId}`,
      );
      const now = await agent.infer('crashy', inferBody(data, rows));
      expect(now.body.model_version).toBe(String(version));
      expect(maxAbsDiff(now.body.outputs[0].data, expectedNew)).toBeLessThanOrEqual(1e-6);
    },
  );
});
