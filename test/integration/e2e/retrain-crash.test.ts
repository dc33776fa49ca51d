/**
 * A retrain survives a fleet server SIGKILLed between two of its steps: a real fleet process (with one real
 * agent, so a canary has a device to go to) is killed by its fault hook (EDGEFLEET_FAULT_AFTER) right after
 * the retrain persists `creating_rollout` — the step the old loop did the other way round (canary first,
 * record after), which left a canary no record named once `start()` marked the retrain interrupted. Started
 * again on the same data dir, the retrain creates the canary under the id it had persisted and ends
 * `rolling_out` naming it: one canary, the one the record names.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededNormals } from '../../../shared/onnx/mlp.js';
import { AgentProcess, enrollAgent } from '../../support/agent-process.js';
import { FleetProcess } from '../../support/fleet-process.js';
import { waitFor } from '../../support/wait.js';

/** Four features; `pass` when f0 + f1 > 0. */
function csv(rows: number): string {
  const draw = seededNormals(3);
  const lines = Array.from({ length: rows }, () => {
    const x = [draw(), draw(), draw(), draw()];
    return [...x.map((v) => v.toFixed(6)), x[0]! + x[1]! > 0 ? 'pass' : 'fail'].join(',');
  });
  return ['f0,f1,f2,f3,label', ...lines].join('\n');
}

describe('a retrain across a fleet SIGKILLed after creating_rollout is persisted', () => {
  let root: string;
  let fleet: FleetProcess;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'edgefleet-retrain-crash-'));
    fleet = await FleetProcess.start(join(root, 'fleet'), {
      EDGEFLEET_FAULT_AFTER: 'retrain:creating_rollout',
    });
    await fleet.api.request(
      'POST',
      '/api/v1/tasks/quality/import?format=csv&source=a.csv',
      new TextEncoder().encode(csv(400)),
    );
    const { token } = await fleet.api.enrollmentToken({ tags: { line: 'r' } });
    const dataDir = join(root, 'agent');
    await enrollAgent({ server: fleet.httpUrl, token, dataDir });
    agent = await AgentProcess.start({ dataDir });
  }, 120_000);

  afterAll(async () => {
    await agent?.kill('SIGTERM');
    await fleet?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('ends rolling_out with the one canary its record names', async () => {
    // v1, barely trained, in production on the device; the retrain's v2 (trained properly) beats it.
    const v1 = await fleet.api.settledRun(
      (await fleet.api.train('quality', { config: { hidden: [2], epochs: 1, seed: 1 } })).id,
    );
    expect(v1.error).toBeNull();
    const first = await fleet.api.request('POST', '/api/v1/rollouts', {
      model: { name: 'quality', version: 'candidate' },
      targets: { tags: { line: 'r' } },
      strategy: 'all-at-once',
    });
    expect((await fleet.api.settledRollout(first.id)).phase).toBe('succeeded');
    await waitFor(
      async () => (await fleet.api.request('GET', '/api/v1/models/quality/aliases')).aliases.production,
      'production to move to v1',
    );
    await fleet.api.request('PUT', '/api/v1/tasks/quality/retrain-policy', {
      mode: 'auto',
      margin: 0,
      trainConfig: { hidden: [16], epochs: 40, seed: 7 },
    });

    const triggered = await fleet.api.request('POST', '/api/v1/tasks/quality/retrain', {
      reason: 'crash test',
    });
    expect(await fleet.ended('the fleet to kill itself after creating_rollout')).toBe('SIGKILL');
    expect(fleet.stderr).toMatch(/fault: killed after retrain:creating_rollout/);

    await fleet.restart();
    const settled = await waitFor(
      async () => {
        const r = await fleet.api.request('GET', `/api/v1/retrains/${triggered.id}`);
        return ['rolling_out', 'completed', 'rollout_failed', 'failed', 'rejected'].includes(r.status)
          ? r
          : undefined;
      },
      `retrain ${triggered.id} to take up its canary after the restart`,
      60_000,
      100,
    );
    // The premise: the challenger won (else there would be no canary to agree on).
    expect(settled.evaluation?.won, JSON.stringify(settled.evaluation)).toBe(true);
    expect(settled.error).toBeNull();
    expect(settled.status).toBe('rolling_out');
    expect(settled.rollout).toEqual(expect.any(String));

    const rollouts = (await fleet.api.request('GET', '/api/v1/rollouts')).rollouts as {
      id: string;
      model: { name: string; version: number };
    }[];
    const canaries = rollouts.filter((r) => r.model.version === settled.version);
    expect(canaries.map((r) => r.id)).toEqual([settled.rollout]);
    expect(rollouts.map((r) => r.id).sort()).toEqual([first.id, settled.rollout].sort());
    const canary = await fleet.api.request('GET', `/api/v1/rollouts/${settled.rollout}`);
    expect(canary.model).toEqual({ name: 'quality', version: settled.version });
    expect(settled.events.filter((e: { step: string }) => e.step === 'rollout')).toHaveLength(1);
  }, 300_000);
});
