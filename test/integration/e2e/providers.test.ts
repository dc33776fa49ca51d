/**
 * Execution providers as the fleet sees them: an agent on the x86_64-cuda profile (CUDA, then CPU) on a
 * machine without CUDA serves on the CPU, and the fleet shows, for that device, the provider in use and why
 * CUDA did not load — in the device API and in `edgefleet devices show`. A profile that lists only CUDA
 * fails the install with that reason.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, enrollAgent } from '../../support/agent-process.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { mlp, ORT_HAS_CUDA } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';
import { runCli } from '../../unit/fleet-server/cli/harness.js';

const CUDA_ONLY = {
  id: 'cuda-only',
  description: 'test: CUDA and nothing else',
  arch: 'x64',
  executionProviders: [{ name: 'cuda', options: { deviceId: 0 } }],
  intraOpThreads: 1,
  memoryBudgetBytes: 1 << 30,
  maxModelBytes: 1 << 28,
};

// On a machine whose ONNX Runtime has the CUDA provider these would load on CUDA: not what is tested here.
describe.skipIf(ORT_HAS_CUDA)('execution providers per device', () => {
  let env: TestFleet;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    env = await startTestFleet([CUDA_ONLY]);
    for (const profile of ['x86_64-cuda', 'cuda-only']) {
      const { token } = await env.api.enrollmentToken({ profile, tags: { ep: 'test' } });
      const dataDir = await mkdtemp(join(tmpdir(), `edgefleet-ep-${profile}-`));
      await enrollAgent({ server: env.fleet.httpUrl, token, dataDir });
      agents.push(await AgentProcess.start({ dataDir, telemetryIntervalMs: 300 }));
    }
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    await env?.close();
  });

  it('serves on the CPU where CUDA is missing, and the fleet shows why; a CUDA-only profile fails with it', async () => {
    const [fallback, cudaOnly] = agents as [AgentProcess, AgentProcess];
    await env.api.pushModel('clf', mlp(3));
    const rollout = await env.api.createRollout('clf', 1, { tags: { ep: 'test' } });
    const settled = await env.api.settledRollout(rollout.id);

    const byDevice = new Map(settled.devices.map((d: { deviceId: string }) => [d.deviceId, d]));
    expect(byDevice.get(fallback.deviceId)).toMatchObject({ state: 'active', executionProvider: 'cpu' });
    expect(byDevice.get(cudaOnly.deviceId)).toMatchObject({
      state: 'failed',
      reason: {
        code: 'no_execution_provider',
        message: expect.stringMatching(
          /^no execution provider of profile cuda-only could load the model: cuda: \S/,
        ),
      },
    });

    const device = await waitFor(async () => {
      const d = await env.api.device(fallback.deviceId);
      return d.models.length > 0 ? d : undefined;
    }, 'the fallback device to report its model');
    expect(device.models).toEqual([
      {
        name: 'clf',
        version: 1,
        executionProvider: 'cpu',
        providersSkipped: [{ provider: 'cuda', reason: expect.stringMatching(/\S/) }],
      },
    ]);
    const reason = device.models[0].providersSkipped[0].reason as string;

    const shown = await runCli(['devices', 'show', fallback.deviceId], {
      env: { EDGEFLEET_URL: env.fleet.httpUrl, EDGEFLEET_TOKEN: env.api.token },
    });
    expect(shown.stdout).toContain('PROVIDERS THAT DID NOT LOAD');
    expect(shown.stdout).toContain(`cuda: ${reason.slice(0, 40)}`);
  });
});
