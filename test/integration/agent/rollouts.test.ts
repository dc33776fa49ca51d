/**
 * The device side of progressive rollouts over real parts (LevelDB, slots on disk, real ONNX Runtime, a real
 * artifact server): a shadow install runs the candidate beside the active model on mirrored requests and
 * compares them; `activate` switches it in; `rollback` discards a shadowing candidate or switches an active
 * one back to the previous slot without downloading anything; both survive restarts and re-delivery.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentDb } from '../../../agent/store.js';
import { generateSigningKey, type SigningKey, sha256Hex } from '../../../shared/crypto/signing.js';
import type { ActivateCommand, RollbackCommand } from '../../../shared/protocol/messages.js';
import { mlp, randomBatch } from '../../support/models.js';
import { TEST_CPU_PROFILE } from '../../support/profiles.js';
import {
  ArtifactServer,
  type Device,
  identityFor,
  installCommand,
  manifestFor,
  openDevice,
  SAMPLE,
} from './harness.js';

const V2 = mlp(2);
const V3 = mlp(3);

let dir: string;
let server: ArtifactServer;
let key: SigningKey;
let device: Device | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-rollouts-'));
  server = await ArtifactServer.start();
  key = generateSigningKey();
});
afterEach(async () => {
  await device?.close();
  device = undefined;
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const open = async () => {
  device = await openDevice({ dataDir: dir, identity: identityFor(key, TEST_CPU_PROFILE) });
  return device;
};
const activate = (version: number): ActivateCommand => ({
  v: 1,
  type: 'activate',
  id: randomUUID(),
  ts: 0,
  rolloutId: 'ro-1',
  model: { name: 'm', version },
});
const rollback = (version: number): RollbackCommand => ({
  v: 1,
  type: 'rollback',
  id: randomUUID(),
  ts: 0,
  rolloutId: 'ro-1',
  model: { name: 'm', version },
  reason: { code: 'gate_failed', message: 'p95_latency_ratio 5 not <= 2' },
});
const shadowInstall = async (bytes: Uint8Array, version: number) => ({
  ...installCommand(await manifestFor(bytes, version, key), server.put(bytes)),
  mode: 'shadow' as const,
  shadowPercent: 100,
});

async function serving2(): Promise<Device> {
  const d = await open();
  await d.install(installCommand(await manifestFor(V2, 2, key), server.put(V2)));
  expect(d.host.versionOf('m')).toBe(2);
  return d;
}

async function traffic(d: Device, n: number): Promise<void> {
  for (let i = 0; i < n; i++) expect((await d.infer(randomBatch(100 + i, 1))).status).toBe(200);
  await d.shadow.idle();
}

describe('shadow installs', () => {
  it('run the candidate beside the active model; agreement is full for the same function', async () => {
    const d = await serving2();
    const reports = await d.install(await shadowInstall(V2, 3)); // v3: the same function as v2
    expect(reports.map((r) => r.state)).toEqual([
      'received',
      'downloading',
      'verifying',
      'staged',
      'loading',
      'shadowing',
    ]);
    expect(d.host.versionOf('m')).toBe(2);
    await traffic(d, 40);
    const [stats] = d.shadow.takeStats();
    expect(stats).toMatchObject({
      active: { name: 'm', version: 2 },
      candidate: { name: 'm', version: 3 },
      mirrored: 40,
      compared: 40,
      agreed: 40,
      dropped: 0,
      errors: 0,
    });
    expect(stats!.candidateLatencyBuckets.reduce((a, b) => a + b)).toBe(40);
    // The response always comes from the active model.
    expect((await d.infer(SAMPLE)).body.model_version).toBe('2');
  });

  it('a different function disagrees on some requests', async () => {
    const d = await serving2();
    await d.install(await shadowInstall(V3, 3));
    await traffic(d, 60);
    const [stats] = d.shadow.takeStats();
    expect(stats!.compared).toBe(60);
    expect(stats!.agreed).toBeLessThan(60);
  });

  it('activate switches the shadowing candidate in, reported on the install command', async () => {
    const d = await serving2();
    const install = await shadowInstall(V3, 3);
    await d.install(install);
    const requests = server.requests.length;
    await d.command(activate(3));
    expect(
      d.reports
        .filter((r) => r.commandId === install.id)
        .map((r) => r.state)
        .slice(-2),
    ).toEqual(['activating', 'active']);
    expect(d.host.versionOf('m')).toBe(3);
    expect(d.shadow.get('m')).toBeUndefined();
    expect(server.requests.length).toBe(requests);
    // A re-sent activate re-reports, changes nothing.
    await d.command(activate(3));
    expect(d.host.versionOf('m')).toBe(3);
  });

  it('restarts while shadowing never add up to a crash loop', async () => {
    const d = await serving2();
    const install = await shadowInstall(V3, 3);
    await d.install(install);
    await d.close();
    for (let restart = 0; restart < 5; restart++) {
      device = await openDevice({
        dataDir: dir,
        identity: identityFor(key, TEST_CPU_PROFILE),
        serveFromDisk: true,
      });
      await device.driver.idle();
      expect(device.shadow.get('m')?.model.version).toBe(3);
      await device.close();
      device = undefined;
    }
    const db = await AgentDb.open(join(dir, 'db'));
    try {
      expect(await db.updates().get(install.id)).toMatchObject({
        state: 'shadowing',
        reentries: { shadowing: 0 },
      });
    } finally {
      await db.close();
    }
  });

  it('a newer install supersedes a shadowing candidate before overwriting its slot', async () => {
    const d = await serving2();
    const first = await shadowInstall(V3, 3);
    await d.install(first);
    const V4 = mlp(4);
    const reports = await d.install(installCommand(await manifestFor(V4, 4, key), server.put(V4)));
    expect(reports.at(-1)?.state).toBe('active');
    expect(d.reports.filter((r) => r.commandId === first.id).at(-1)).toMatchObject({
      state: 'failed',
      reason: { code: 'superseded' },
    });
    expect(d.shadow.get('m')).toBeUndefined();
    expect(d.host.versionOf('m')).toBe(4);
  });

  it('keeps shadowing across a restart', async () => {
    const d = await serving2();
    await d.install(await shadowInstall(V3, 3));
    await d.close();
    device = await openDevice({
      dataDir: dir,
      identity: identityFor(key, TEST_CPU_PROFILE),
      serveFromDisk: true,
    });
    const again = device;
    await again.driver.idle();
    expect(again.shadow.get('m')?.model).toEqual({ name: 'm', version: 3 });
    expect(again.host.versionOf('m')).toBe(2);
    await traffic(again, 5);
    expect(again.shadow.takeStats()[0]!.compared).toBe(5);
  });
});

describe('rollback', () => {
  it('of a shadowing candidate discards it; the active model never changed', async () => {
    const d = await serving2();
    const install = await shadowInstall(V3, 3);
    await d.install(install);
    const command = rollback(3);
    const reports = await d.command(command);
    expect(reports).toEqual([
      expect.objectContaining({
        state: 'rolled_back',
        model: { name: 'm', version: 3 },
        serving: { name: 'm', version: 2 },
        reason: command.reason,
      }),
    ]);
    expect(d.reports.filter((r) => r.commandId === install.id).at(-1)?.state).toBe('rolled_back');
    expect(d.shadow.get('m')).toBeUndefined();
    expect(d.host.versionOf('m')).toBe(2);
  });

  it('of the active model switches back to the previous slot without downloading anything', async () => {
    const d = await serving2();
    await d.install(installCommand(await manifestFor(V3, 3, key), server.put(V3)));
    expect(await d.slots.readActive('m')).toMatchObject({ slot: 'b', version: 3 });
    const requests = server.requests.length;
    const command = rollback(3);
    const reports = await d.command(command);
    expect(reports.map((r) => [r.state, r.serving?.version])).toEqual([['rolled_back', 2]]);
    expect(server.requests.length).toBe(requests);
    expect(await d.slots.readActive('m')).toEqual({ slot: 'a', version: 2, sha256: sha256Hex(V2) });
    expect((await d.infer(SAMPLE)).body.model_version).toBe('2');
    // Re-delivered: re-reported as it ended, nothing redone.
    const again = await d.command(command);
    expect(again.map((r) => r.state)).toEqual(['rolled_back', 'rolled_back']);
    expect(await d.slots.readActive('m')).toMatchObject({ slot: 'a', version: 2 });
  });

  it('of the active model never switches forward to a newer candidate staged in the other slot', async () => {
    const d = await serving2();
    await d.install(installCommand(await manifestFor(V3, 3, key), server.put(V3)));
    // v4 shadows from slot a, where v2 was kept: there is no previous model any more.
    const V4 = mlp(4);
    await d.install({
      ...installCommand(await manifestFor(V4, 4, key), server.put(V4)),
      mode: 'shadow',
      shadowPercent: 100,
    });
    const reports = await d.command(rollback(3));
    expect(reports.map((r) => [r.state, r.reason?.code, r.serving?.version])).toEqual([
      ['failed', 'no_previous_model', 3],
    ]);
    expect(reports[0]!.reason?.message).toContain('v4');
    expect(d.host.versionOf('m')).toBe(3);
    expect(d.shadow.get('m')?.model.version).toBe(4);
  });

  it('fails with a reason when there is no previous model, and the active one keeps serving', async () => {
    const d = await serving2();
    const reports = await d.command(rollback(2));
    expect(reports.map((r) => [r.state, r.reason?.code])).toEqual([['failed', 'no_previous_model']]);
    expect(d.host.versionOf('m')).toBe(2);
  });

  it('of a version that is not serving here changes nothing and says so', async () => {
    const d = await serving2();
    const reports = await d.command(rollback(7));
    expect(reports.map((r) => [r.state, r.serving?.version])).toEqual([['rolled_back', 2]]);
    expect(d.host.versionOf('m')).toBe(2);
  });
});
