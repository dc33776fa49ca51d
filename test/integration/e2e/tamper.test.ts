/**
 * Every way a model can be tampered with or unfit is refused ON THE DEVICE, each with its own reason in the
 * rollout status, while the previous model keeps serving. Tampering happens at rest on the fleet (artifact
 * file, stored manifest), as an attacker with disk access would do it, so the fleet sends what it holds
 * and only the device's verification stands in the way.
 */
import { mkdtemp, open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelVersionRecord, versionKey } from '../../../fleet-server/registry/models.js';
import { generateSigningKey, publicInfoOf } from '../../../shared/crypto/signing.js';
import { type Manifest, signManifest } from '../../../shared/manifest.js';
import { AgentProcess, enrollAgent } from '../../support/agent-process.js';
import { REPO_PROFILES, startTestFleet, type TestFleet } from '../../support/fleet.js';
import { directRun, inferBody, maxAbsDiff, mlp, randomBatch } from '../../support/models.js';

const MODEL = 'guarded';

describe('tampered or unfit models are rejected on the device, the previous model keeps serving', () => {
  let env: TestFleet;
  let agent: AgentProcess;
  let deviceId: string;
  const rows = 3;
  const data = randomBatch(5, rows);
  let servingOutputs: Float32Array;

  beforeAll(async () => {
    // A small-device profile: the 32→64→64→2 MLP (~26 KB) fits, a 32→256→256→2 one (~300 KB) does not.
    const cpu = JSON.parse(await readFile(join(REPO_PROFILES, 'x86_64-cpu.json'), 'utf8'));
    env = await startTestFleet([
      { ...cpu, id: 'tiny-cpu', description: 'test: 100 kB models', maxModelBytes: 100_000 },
    ]);
    const { token } = await env.api.enrollmentToken({ profile: 'tiny-cpu' });
    const dataDir = await mkdtemp(join(tmpdir(), 'edgefleet-tamper-'));
    deviceId = await enrollAgent({ server: env.fleet.httpUrl, token, dataDir });
    agent = await AgentProcess.start({ dataDir });

    await env.api.pushModel(MODEL, mlp(1));
    await env.api.pushModel(MODEL, mlp(2));
    const rollout = await env.api.createRollout(MODEL, 2, { devices: [deviceId] });
    expect((await env.api.settledRollout(rollout.id)).phase).toBe('succeeded');
    servingOutputs = await directRun(mlp(2), data, rows);
  });

  afterAll(async () => {
    await agent?.kill('SIGTERM');
    await env?.close();
  });

  const versions = () => env.fleet.db.collection<ModelVersionRecord>('model-versions');

  async function rewriteManifest(version: number, change: (m: Manifest) => Manifest): Promise<void> {
    const record = (await versions().get(versionKey(MODEL, version)))!;
    await versions().put(versionKey(MODEL, version), { ...record, manifest: change(record.manifest) });
  }

  async function expectRejected(version: number, code: string): Promise<void> {
    const rollout = await env.api.createRollout(MODEL, version, { devices: [deviceId] });
    const settled = await env.api.settledRollout(rollout.id);
    expect(settled.phase).toBe('failed');
    expect(settled.devices[0].state).toBe('failed');
    expect(settled.devices[0].reason.code, settled.devices[0].reason.message).toBe(code);
    expect(settled.devices[0].reason.message.length).toBeGreaterThan(10);
    const res = await agent.infer(MODEL, inferBody(data, rows));
    expect(res.status).toBe(200);
    expect(res.body.model_version).toBe('2');
    expect(maxAbsDiff(res.body.outputs[0].data, servingOutputs)).toBeLessThanOrEqual(1e-6);
  }

  it('artifact bytes changed after signing → artifact_sha256_mismatch', async () => {
    const pushed = await env.api.pushModel(MODEL, mlp(3));
    const file = join(env.fleet.config.dataDir, 'artifacts', 'sha256', pushed.artifact.sha256);
    const handle = await open(file, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 2000);
    await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 2000);
    await handle.close();
    await expectRejected(pushed.version, 'artifact_sha256_mismatch');
  });

  it('manifest changed after signing → signature_invalid', async () => {
    const pushed = await env.api.pushModel(MODEL, mlp(4));
    await rewriteManifest(pushed.version, (m) => ({ ...m, expiresAt: '2099-01-01T00:00:00.000Z' }));
    await expectRejected(pushed.version, 'signature_invalid');
  });

  it('manifest signed by a key the device never pinned → signature_unknown_key', async () => {
    const pushed = await env.api.pushModel(MODEL, mlp(5));
    const rogue = generateSigningKey();
    await rewriteManifest(pushed.version, ({ signatures: _s, ...unsigned }) => signManifest(unsigned, rogue));
    await expectRejected(pushed.version, 'signature_unknown_key');
  });

  it('an older version → version_not_newer', async () => {
    await expectRejected(1, 'version_not_newer');
  });

  it('a manifest past its expiry, validly signed → manifest_expired', async () => {
    const pushed = await env.api.pushModel(MODEL, mlp(6));
    const pem = await readFile(join(env.fleet.config.dataDir, 'keys', 'signing-key.pem'), 'utf8');
    const fleetKey = { ...publicInfoOf(pem), privateKeyPem: pem };
    await rewriteManifest(pushed.version, ({ signatures: _s, ...unsigned }) =>
      signManifest({ ...unsigned, expiresAt: new Date(Date.now() - 60_000).toISOString() }, fleetKey),
    );
    await expectRejected(pushed.version, 'manifest_expired');
  });

  it('a model larger than the profile allows → profile_incompatible', async () => {
    const big = mlp(7, 256);
    expect(big.length).toBeGreaterThan(100_000);
    const pushed = await env.api.pushModel(MODEL, big);
    await expectRejected(pushed.version, 'profile_incompatible');
  });

  it('after all that, a good model still installs', async () => {
    const pushed = await env.api.pushModel(MODEL, mlp(8));
    const rollout = await env.api.createRollout(MODEL, pushed.version, { devices: [deviceId] });
    expect((await env.api.settledRollout(rollout.id)).phase).toBe('succeeded');
    const res = await agent.infer(MODEL, inferBody(data, rows));
    expect(res.body.model_version).toBe(String(pushed.version));
    expect(maxAbsDiff(res.body.outputs[0].data, await directRun(mlp(8), data, rows))).toBeLessThanOrEqual(
      1e-6,
    );
  });
});
