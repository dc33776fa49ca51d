/**
 * Model variants end to end: a fleet whose devices run two profiles — one accepting fp16 before default, one
 * accepting default only — and real agents as child processes. A version with both variants (two different
 * MLPs with the same inputs and outputs) rolls out to all of them; each device installs and serves the
 * variant its profile prefers, numbers identical to a direct ONNX Runtime run of that variant. A version with
 * only fp16 is refused for the mixed fleet, naming the default-only devices, until a default variant is added.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, enrollAgent, expectServes } from '../../support/agent-process.js';
import { ApiError, REPO_PROFILES, startTestFleet, type TestFleet } from '../../support/fleet.js';
import { directRun, maxAbsDiff, mlp, randomBatch } from '../../support/models.js';

const MODEL = 'detector';
/** The two builds of each version: same 32 → 2 contract, different weights (so outputs tell them apart). */
const BUILDS = {
  1: { default: mlp(21), fp16: mlp(22) },
  2: { default: mlp(23), fp16: mlp(24) },
} as const;

describe('model variants: each device gets the variant its profile accepts', () => {
  let env: TestFleet;
  const agents: { agent: AgentProcess; profile: 'edge-fp16' | 'edge-default' }[] = [];
  const rows = 4;
  const data = randomBatch(77, rows);

  beforeAll(async () => {
    const cpu = JSON.parse(await readFile(join(REPO_PROFILES, 'x86_64-cpu.json'), 'utf8'));
    env = await startTestFleet([
      { ...cpu, id: 'edge-fp16', description: 'test: fp16 preferred', acceptsVariants: ['fp16', 'default'] },
      { ...cpu, id: 'edge-default', description: 'test: default only', acceptsVariants: ['default'] },
    ]);
    const profiles = ['edge-fp16', 'edge-fp16', 'edge-default', 'edge-default'] as const;
    await Promise.all(
      profiles.map(async (profile, i) => {
        const { token } = await env.api.enrollmentToken({ profile, tags: { site: 'mixed' } });
        const dataDir = await mkdtemp(join(tmpdir(), `edgefleet-variant-${i}-`));
        await enrollAgent({ server: env.fleet.httpUrl, token, dataDir });
        agents.push({ agent: await AgentProcess.start({ dataDir }), profile });
      }),
    );
  });

  afterAll(async () => {
    await Promise.all(agents.map(({ agent }) => agent.kill('SIGTERM')));
    await env?.close();
  });

  const preferred = (profile: string) => (profile === 'edge-fp16' ? 'fp16' : 'default');

  /** Every agent serves `version`, with exactly the outputs of the variant its profile prefers. */
  async function expectServing(version: 1 | 2): Promise<void> {
    for (const { agent, profile } of agents) {
      const variant = preferred(profile);
      const expected = await directRun(BUILDS[version][variant], data, rows);
      const other = await directRun(BUILDS[version][variant === 'fp16' ? 'default' : 'fp16'], data, rows);
      expect(maxAbsDiff(expected, other)).toBeGreaterThan(1e-3); // the builds are distinguishable
      await expectServes(agent, MODEL, {
        version,
        data,
        rows,
        expected,
        what: `${agent.deviceId} (${profile}) serves ${variant}`,
      });
    }
  }

  it('a version with default and fp16 rolls out to the mixed fleet; each device runs its variant', async () => {
    const pushed = await env.api.pushModel(MODEL, BUILDS[1].default);
    expect(pushed.version).toBe(1);
    const version = await env.api.request(
      'POST',
      `/api/v1/models/${MODEL}/versions/1/variants/fp16`,
      BUILDS[1].fp16,
    );
    const sha = Object.fromEntries(
      version.variants.map((v: { variant: string; artifact: { sha256: string } }) => [
        v.variant,
        v.artifact.sha256,
      ]),
    );

    const rollout = await env.api.createRollout(MODEL, 1, { tags: { site: 'mixed' } });
    const settled = await env.api.settledRollout(rollout.id);
    expect(settled.phase, JSON.stringify(settled.devices)).toBe('succeeded');
    for (const { agent, profile } of agents) {
      const device = settled.devices.find((d: { deviceId: string }) => d.deviceId === agent.deviceId);
      expect(device).toMatchObject({ state: 'active', variant: preferred(profile) });
    }
    expect(settled.status.events[0].message).toBe(
      'all-at-once rollout to 4 device(s) (variants: default ×2, fp16 ×2)',
    );
    expect(sha.fp16).not.toBe(sha.default);
    await expectServing(1);
  });

  it('an fp16-only version is refused for the mixed fleet, naming the default-only devices; a default variant lets it go', async () => {
    const pushed = await env.api.request(
      'POST',
      `/api/v1/models/${MODEL}/versions?variant=fp16`,
      BUILDS[2].fp16,
    );
    expect(pushed).toMatchObject({ version: 2, manifest: { variant: 'fp16' } });

    const err = await env.api.createRollout(MODEL, 2, { tags: { site: 'mixed' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    const { status, body } = err as ApiError;
    expect(status).toBe(409);
    expect(body.error.code).toBe('no_variant_for_devices');
    const message: string = body.error.message;
    expect(message).toMatch(/^detector@2 has no variant for 2 targeted device\(s\): /);
    expect(message).toContain('The version offers fp16; edge-default accepts default.');
    for (const { agent, profile } of agents) {
      if (profile === 'edge-default') expect(message).toContain(`${agent.deviceId} (edge-default)`);
      else expect(message).not.toContain(agent.deviceId);
    }
    // Nothing was started: every device still serves v1.
    const rollouts = (await env.api.request('GET', '/api/v1/rollouts')).rollouts;
    expect(rollouts.filter((r: { model: { version: number } }) => r.model.version === 2)).toEqual([]);
    await expectServing(1);

    await env.api.request('POST', `/api/v1/models/${MODEL}/versions/2/variants/default`, BUILDS[2].default);
    const rollout = await env.api.createRollout(MODEL, 2, { tags: { site: 'mixed' } });
    const settled = await env.api.settledRollout(rollout.id);
    expect(settled.phase, JSON.stringify(settled.devices)).toBe('succeeded');
    await expectServing(2);
  });
});
