/**
 * The update driver over real parts: LevelDB in a temp dir, model slots on disk, a real HTTP artifact server
 * with Range support, real ONNX Runtime sessions and Ed25519-signed manifests. A signed model installs and
 * activates; interrupted downloads resume; every kind of bad update fails with its own code while the
 * previous model keeps serving, untouched on disk.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateSigningKey, type SigningKey, sha256Hex } from '../../../shared/crypto/signing.js';
import type { FirmwareProfile } from '../../../shared/firmware-profile.js';
import type { Manifest } from '../../../shared/manifest.js';
import type { UpdateState } from '../../../shared/protocol/messages.js';
import { mlp, ORT_HAS_CUDA } from '../../support/models.js';
import { TEST_CPU_PROFILE } from '../../support/profiles.js';
import { HAPPY_PATH } from '../../support/update-states.js';
import {
  ArtifactServer,
  DEVICE_ID,
  type Device,
  type Fault,
  identityFor,
  installCommand,
  manifestFor,
  maxAbsDiff,
  openDevice,
  PASSWORD,
  runDirect,
  SAMPLE,
} from './harness.js';

const HAPPY = [...HAPPY_PATH];

const V2 = mlp(2);
const V3 = mlp(3);

let dir: string;
let server: ArtifactServer;
let key: SigningKey;
let device: Device | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-updater-'));
  server = await ArtifactServer.start();
  key = generateSigningKey();
});
afterEach(async () => {
  await device?.close();
  device = undefined;
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const fileSha = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

/** A device already serving v2 of model `m` from slot a. */
async function deviceServingV2(profile = TEST_CPU_PROFILE): Promise<Device> {
  device = await openDevice({ dataDir: dir, identity: identityFor(key, profile) });
  const reports = await device.install(installCommand(await manifestFor(V2, 2, key), server.put(V2)));
  expect(reports.map((r) => r.state)).toEqual(HAPPY);
  return device;
}

/** The previous model still serves, from the slot it was in, with its bytes unchanged. */
async function expectV2StillServing(d: Device): Promise<void> {
  expect(d.host.versionOf('m')).toBe(2);
  expect(await d.slots.readActive('m')).toEqual({ slot: 'a', version: 2, sha256: sha256Hex(V2) });
  expect(await fileSha(d.slots.modelPath('m', 'a'))).toBe(sha256Hex(V2));
  const res = await d.infer(SAMPLE);
  expect(res.status).toBe(200);
  expect(res.body.model_version).toBe('2');
  expect(maxAbsDiff(res.body.outputs[0].data, await runDirect(V2, SAMPLE))).toBeLessThanOrEqual(1e-6);
}

describe('installing a signed model', () => {
  it('downloads with device credentials, stages into the inactive slot, self-tests, activates and serves', async () => {
    const d = await deviceServingV2();
    const manifest = await manifestFor(V3, 3, key);
    const reports = await d.install(installCommand(manifest, server.put(V3)));

    expect(reports.map((r) => r.state)).toEqual(HAPPY);
    expect(reports.at(-1)).toMatchObject({
      executionProvider: 'cpu',
      serving: { name: 'm', version: 3 },
      reason: null,
    });
    const [request] = server.requestsFor(sha256Hex(V3));
    expect(request?.authorization).toBe(
      `Basic ${Buffer.from(`${DEVICE_ID}:${PASSWORD}`).toString('base64')}`,
    );

    // v3 went into b; a keeps v2 for rollback; the pointer moved; no partial download is left.
    expect(await d.slots.readActive('m')).toEqual({ slot: 'b', version: 3, sha256: sha256Hex(V3) });
    expect(await fileSha(d.slots.modelPath('m', 'b'))).toBe(sha256Hex(V3));
    expect(await fileSha(d.slots.modelPath('m', 'a'))).toBe(sha256Hex(V2));
    expect(JSON.parse(await readFile(join(dir, 'models/m/b/manifest.json'), 'utf8'))).toEqual(manifest);
    expect(await readdir(join(dir, 'downloads'))).toEqual([]);

    const res = await d.infer(SAMPLE);
    expect(res.body.model_version).toBe('3');
    expect(maxAbsDiff(res.body.outputs[0].data, await runDirect(V3, SAMPLE))).toBeLessThanOrEqual(1e-6);

    // The next version goes into a (the inactive slot again), never over the active b.
    const v4 = mlp(4);
    expect(
      (await d.install(installCommand(await manifestFor(v4, 4, key), server.put(v4)))).at(-1)?.state,
    ).toBe('active');
    expect(await d.slots.readActive('m')).toMatchObject({ slot: 'a', version: 4 });
    expect(await fileSha(d.slots.modelPath('m', 'b'))).toBe(sha256Hex(V3));
  });

  it('the version already serving reports active without downloading again', async () => {
    const d = await deviceServingV2();
    const before = server.requests.length;
    const reports = await d.install(installCommand(await manifestFor(V2, 2, key), server.put(V2)));
    expect(reports.map((r) => r.state)).toEqual(['received', 'active']);
    expect(server.requests.length).toBe(before);
    await expectV2StillServing(d);
  });

  it('a re-sent command id re-reports its outcome and does nothing else', async () => {
    const d = await deviceServingV2();
    const command = installCommand(await manifestFor(V3, 3, key), server.put(V3));
    await d.install(command);
    const requests = server.requests.length;
    const again = await d.install(command);
    expect(again.map((r) => r.state)).toEqual([...HAPPY, 'active']);
    expect(server.requests.length).toBe(requests);
  });

  it('queued updates run one at a time, in order', async () => {
    device = await openDevice({ dataDir: dir, identity: identityFor(key) });
    const first = installCommand(await manifestFor(V2, 2, key), server.put(V2));
    const second = installCommand(await manifestFor(V3, 3, key), server.put(V3));
    await device.driver.submit(first);
    await device.driver.submit(second);
    await device.driver.idle();
    const order = device.reports.map((r) => `${r.commandId === first.id ? 1 : 2}:${r.state}`);
    expect(order).toEqual([...HAPPY.map((s) => `1:${s}`), ...HAPPY.map((s) => `2:${s}`)]);
    expect(device.host.versionOf('m')).toBe(3);
  });

  it('resumes an interrupted download with a Range request from what is on disk', async () => {
    await deviceServingV2();
    await device!.close();
    // The link drops right after the first chunk reached the disk.
    const part = join(dir, 'downloads', `${sha256Hex(V3)}.part`);
    let onDisk = -1;
    device = await openDevice({
      dataDir: dir,
      identity: identityFor(key),
      onFirstChunk: async () => {
        if (onDisk >= 0) return; // the resumed attempt
        onDisk = (await stat(part)).size;
        server.dropConnections();
      },
    });
    const url = server.put(V3);
    server.fault(sha256Hex(V3), { stallAfter: 10_000 });
    const reports = await device.install(installCommand(await manifestFor(V3, 3, key), url));
    expect(reports.map((r) => r.state)).toEqual(HAPPY);
    expect(onDisk).toBeGreaterThan(0);
    const requests = server.requestsFor(sha256Hex(V3));
    expect(requests.map((r) => [r.status, r.range])).toEqual([
      [200, undefined],
      [206, `bytes=${onDisk}-`],
    ]);
    expect(device.host.versionOf('m')).toBe(3);
  });

  it('retries a transiently unavailable server', async () => {
    const d = await deviceServingV2();
    const url = server.put(V3);
    server.fault(sha256Hex(V3), { unavailable: 2 });
    const reports = await d.install(installCommand(await manifestFor(V3, 3, key), url));
    expect(reports.at(-1)?.state).toBe('active');
    expect(server.requestsFor(sha256Hex(V3)).map((r) => r.status)).toEqual([503, 503, 200]);
  });

  // Where this binding has no CUDA provider library, asking for CUDA must not silently run on the CPU and
  // be reported as CUDA: the profile's CPU fallback wins and the report says so.
  it.skipIf(ORT_HAS_CUDA)(
    'reports the execution provider that really loaded (CUDA asked, CPU ran)',
    async () => {
      const profile = {
        ...TEST_CPU_PROFILE,
        executionProviders: [
          { name: 'cuda' as const, options: {} },
          { name: 'cpu' as const, options: {} },
        ],
      };
      device = await openDevice({ dataDir: dir, identity: identityFor(key, profile) });
      const reports = await device.install(installCommand(await manifestFor(V2, 2, key), server.put(V2)));
      expect(reports.at(-1)).toMatchObject({ state: 'active', executionProvider: 'cpu' });
      expect(device.host.get('m')?.loaded.skipped).toEqual([
        { provider: 'cuda', reason: expect.stringMatching(/\S/) },
      ]);
    },
  );

  it.skipIf(ORT_HAS_CUDA)(
    'a profile whose providers all fail to load fails the install with each reason; the old model keeps serving',
    async () => {
      const profile: FirmwareProfile = {
        ...TEST_CPU_PROFILE,
        executionProviders: [{ name: 'cpu', options: {} }],
      };
      device = await openDevice({ dataDir: dir, identity: identityFor(key, profile) });
      const first = await device.install(installCommand(await manifestFor(V2, 2, key), server.put(V2)));
      expect(first.at(-1)?.state).toBe('active');
      // The device's profile now asks for CUDA alone (it was moved to a GPU profile) on a machine without CUDA.
      profile.executionProviders = [{ name: 'cuda', options: {} }];
      const reports = await device.install(installCommand(await manifestFor(V3, 3, key), server.put(V3)));
      expect(reports.at(-1)).toMatchObject({
        state: 'failed',
        reason: {
          code: 'no_execution_provider',
          message: expect.stringMatching(
            /^no execution provider of profile .* could load the model: cuda: \S/,
          ),
        },
        serving: { name: 'm', version: 2 },
      });
      expect(device.host.get('m')?.version).toBe(2);
      expect((await device.slots.readActive('m'))?.version).toBe(2);
      expect((await device.infer(SAMPLE)).status).toBe(200);
    },
  );
});

describe('a bad update fails with its own code and the previous model keeps serving', () => {
  interface Row {
    name: string;
    code: string;
    /** The state the update had reached when it failed. */
    failedAfter: UpdateState;
    message?: RegExp;
    build(): Promise<{ manifest: Manifest | string; url: string }>;
  }
  const serve = (bytes: Uint8Array, fault?: Fault, sha = sha256Hex(bytes)) => {
    const url = server.put(bytes, sha);
    if (fault) server.fault(sha, fault);
    return url;
  };
  const rows: Row[] = [
    {
      name: 'artifact tampered on the server (same length)',
      code: 'artifact_sha256_mismatch',
      failedAfter: 'verifying',
      build: async () => {
        const tampered = Uint8Array.from(V3);
        tampered[tampered.length - 10]! ^= 0xff;
        return { manifest: await manifestFor(V3, 3, key), url: serve(tampered, undefined, sha256Hex(V3)) };
      },
    },
    {
      name: 'server sends more than the signed size',
      code: 'artifact_size_mismatch',
      failedAfter: 'downloading',
      message: new RegExp(`more than the manifest's ${V3.length} bytes`),
      build: async () => ({
        manifest: await manifestFor(V3, 3, key),
        url: serve(V3, { extra: new Uint8Array(4096) }),
      }),
    },
    {
      name: 'signed by a key the device does not pin',
      code: 'signature_unknown_key',
      failedAfter: 'received',
      message: /none of which is pinned/,
      build: async () => ({ manifest: await manifestFor(V3, 3, generateSigningKey()), url: serve(V3) }),
    },
    {
      name: 'manifest changed after signing',
      code: 'signature_invalid',
      failedAfter: 'received',
      build: async () => {
        const signed = await manifestFor(V3, 3, key);
        return {
          manifest: { ...signed, expiresAt: new Date(Date.now() + 9e10).toISOString() },
          url: serve(V3),
        };
      },
    },
    {
      name: 'expired',
      code: 'manifest_expired',
      failedAfter: 'received',
      build: async () => ({
        manifest: await manifestFor(V3, 3, key, { expiresAt: new Date(Date.now() - 1000).toISOString() }),
        url: serve(V3),
      }),
    },
    {
      name: 'older than the version serving',
      code: 'version_not_newer',
      failedAfter: 'received',
      message: /v1 is not newer than the installed v2/,
      build: async () => ({ manifest: await manifestFor(V3, 1, key), url: serve(V3) }),
    },
    {
      name: 'too big for the firmware profile',
      code: 'profile_incompatible',
      failedAfter: 'received',
      message: /allows at most 60000/,
      build: async () => {
        const big = mlp(9, 128);
        return { manifest: await manifestFor(big, 3, key), url: serve(big) };
      },
    },
    {
      name: 'golden outputs disagree (self-test)',
      code: 'selftest_failed',
      failedAfter: 'loading',
      message: /output 'output'\[1\] is [\d.e-]+, golden is 0.5/,
      build: async () => {
        const honest = await manifestFor(V3, 3, key);
        const golden = {
          ...honest.golden,
          outputs: [
            { ...honest.golden.outputs[0]!, data: [honest.golden.outputs[0]!.data[0] as number, 0.5] },
          ],
        };
        return { manifest: await manifestFor(V3, 3, key, { golden }), url: serve(V3) };
      },
    },
    {
      name: 'artifact is not an ONNX model (but signed)',
      code: 'no_execution_provider',
      failedAfter: 'loading',
      build: async () => {
        const junk = new TextEncoder().encode('definitely not protobuf'.repeat(50));
        const real = await manifestFor(V3, 3, key);
        const manifest = await manifestFor(junk, 3, key, { golden: real.golden });
        return { manifest, url: serve(junk) };
      },
    },
    {
      name: 'artifact not found on the server',
      code: 'download_failed',
      failedAfter: 'downloading',
      message: /HTTP 404/,
      build: async () => ({ manifest: await manifestFor(V3, 3, key), url: serve(V3, { status: 404 }) }),
    },
    {
      name: 'server keeps failing',
      code: 'download_failed',
      failedAfter: 'downloading',
      message: /failed 3 times/,
      build: async () => ({ manifest: await manifestFor(V3, 3, key), url: serve(V3, { unavailable: 100 }) }),
    },
  ];

  it.each(rows)('$name → $code', async ({ code, failedAfter, message, build }) => {
    const d = await deviceServingV2({ ...TEST_CPU_PROFILE, maxModelBytes: 60_000 });
    const { manifest, url } = await build();
    const reports = await d.install(installCommand(manifest, url));
    const chain = reports.map((r) => r.state);
    expect(chain).toEqual([...HAPPY.slice(0, HAPPY.indexOf(failedAfter) + 1), 'failed']);
    const last = reports.at(-1)!;
    expect(last.reason?.code).toBe(code);
    if (message) expect(last.reason?.message).toMatch(message);
    expect(last.serving).toEqual({ name: 'm', version: 2 });
    await expectV2StillServing(d);
    // Nothing of the failed download is kept around.
    expect(await readdir(join(dir, 'downloads'))).toEqual([]);
  });
});
