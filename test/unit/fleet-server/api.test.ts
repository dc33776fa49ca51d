/**
 * The fleet HTTP API in-process (`app.request`) over a real LevelDB in a temp dir and real ONNX Runtime:
 * roles, enrollment, model registration with golden I/O, artifact ranges, rollout validation, and JSON
 * errors for bad input. Commands are captured at the MQTT boundary (the broker path has its own suite).
 */
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { createApi } from '../../../fleet-server/api/app.js';
import { runTrainingJob } from '../../../fleet-server/training/job.js';
import type { EnrollResponse } from '../../../shared/api/enroll.js';
import { verifyManifest } from '../../../shared/manifest.js';
import type { InstallCommand } from '../../../shared/protocol/messages.js';
import { mlp, poolModel } from '../../support/models.js';
import { openTempStore, type TempStore } from './temp-store.js';
import { openApi } from './wiring.js';

describe('fleet HTTP API', () => {
  let store: TempStore;
  let app: ReturnType<typeof createApi>;
  let admin: string;
  let clock = new Date('2026-11-01T00:00:00Z');
  const sent: { deviceId: string; command: InstallCommand }[] = [];

  beforeAll(async () => {
    store = await openTempStore('fleet-api-');
    ({ app, admin } = await openApi(store, {
      now: () => clock,
      sendCommand: async (deviceId, command) => {
        if (command.type === 'install') sent.push({ deviceId, command });
      },
      runner: (input, onProgress) => runTrainingJob(input, onProgress),
    }));
  });
  afterAll(() => store?.close());

  const call = async (
    method: string,
    path: string,
    options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
  ) => {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? admin : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: RequestInit['body'];
    if (
      options.body instanceof Uint8Array ||
      options.body instanceof FormData ||
      typeof options.body === 'string'
    )
      body = options.body as RequestInit['body'];
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    const res = await app.request(path, { method, headers, body });
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, json, headers: res.headers };
  };
  const tokenFor = async (role: string) =>
    (await call('POST', '/api/v1/tokens', { body: { role } })).json.token as string;
  const enroll = async (options: { tags?: Record<string, string>; profile?: string } = {}) => {
    const t = await call('POST', '/api/v1/enrollment-tokens', { body: options });
    return (await call('POST', '/api/v1/enroll', { token: null, body: { token: t.json.token } }))
      .json as EnrollResponse;
  };

  describe('roles', () => {
    it('no token → 401, a viewer reads but cannot write, an operator cannot mint tokens', async () => {
      expect((await call('GET', '/api/v1/devices', { token: null })).status).toBe(401);
      expect((await call('GET', '/api/v1/devices', { token: 'ef_wrong' })).json.error.code).toBe(
        'unauthenticated',
      );
      const viewer = await tokenFor('viewer');
      const operator = await tokenFor('operator');
      expect((await call('GET', '/api/v1/devices', { token: viewer })).status).toBe(200);
      const refused = await call('POST', '/api/v1/enrollment-tokens', { token: viewer, body: {} });
      expect(refused.status).toBe(403);
      expect(refused.json.error.message).toMatch(/operator role; the token has viewer/);
      expect((await call('POST', '/api/v1/enrollment-tokens', { token: operator, body: {} })).status).toBe(
        201,
      );
      expect(
        (await call('POST', '/api/v1/tokens', { token: operator, body: { role: 'viewer' } })).status,
      ).toBe(403);
    });
  });

  describe('enrollment', () => {
    it('a token enrolls exactly one device, with credentials, pinned keys and the profile', async () => {
      const t = await call('POST', '/api/v1/enrollment-tokens', {
        body: { tags: { site: 'a' }, profile: 'raspberry-pi-5' },
      });
      const first = await call('POST', '/api/v1/enroll', { token: null, body: { token: t.json.token } });
      expect(first.status).toBe(201);
      expect(first.json.profile.id).toBe('raspberry-pi-5');
      expect(first.json.tags).toEqual({ site: 'a' });
      expect(first.json.mqtt.username).toBe(first.json.deviceId);
      expect(first.json.trustedKeys).toHaveLength(1);
      const again = await call('POST', '/api/v1/enroll', { token: null, body: { token: t.json.token } });
      expect(again.status).toBe(401);
      expect(again.json.error.code).toBe('enrollment_token_used');
      const device = await call('GET', `/api/v1/devices/${first.json.deviceId}`);
      expect(device.json).toMatchObject({
        status: 'never_seen',
        profile: 'raspberry-pi-5',
        tags: { site: 'a' },
      });
      expect(device.json.secret).toBeUndefined();
    });

    it('expired, unknown and unknown-profile tokens are refused with their own codes', async () => {
      const t = await call('POST', '/api/v1/enrollment-tokens', { body: { expiresInSeconds: 60 } });
      clock = new Date(clock.getTime() + 61_000);
      expect(
        (await call('POST', '/api/v1/enroll', { token: null, body: { token: t.json.token } })).json.error
          .code,
      ).toBe('enrollment_token_expired');
      expect(
        (await call('POST', '/api/v1/enroll', { token: null, body: { token: 'eft_not-a-token' } })).json.error
          .code,
      ).toBe('enrollment_token_invalid');
      const badProfile = await call('POST', '/api/v1/enrollment-tokens', { body: { profile: 'toaster' } });
      expect(badProfile.status).toBe(400);
      expect(badProfile.json.error.message).toMatch(/unknown firmware profile 'toaster'.*x86_64-cpu/);
    });

    it('filters devices by tag', async () => {
      const a = await enroll({ tags: { line: '7' } });
      await enroll({ tags: { line: '8' } });
      const list = await call('GET', '/api/v1/devices?tag=line=7');
      expect(list.json.devices.map((d: { id: string }) => d.id)).toEqual([a.deviceId]);
      expect((await call('GET', '/api/v1/devices?tag=oops')).status).toBe(400);
    });
  });

  describe('model registration', () => {
    it('registers a valid model with its inputs, outputs, opset and golden outputs from a real run', async () => {
      const bytes = mlp(21);
      const res = await call('POST', '/api/v1/models/clf/versions', {
        body: bytes,
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(res.status).toBe(201);
      const { manifest } = res.json;
      expect(manifest.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['batch', 32] }]);
      expect(manifest.outputs).toEqual([{ name: 'output', dtype: 'float32', shape: ['batch', 2] }]);
      expect(manifest.opset).toBe(13);
      const golden = manifest.golden.inputs[0];
      expect(golden.shape).toEqual([1, 32]);
      const session = await ort.InferenceSession.create(bytes);
      const out = await session.run({
        input: new ort.Tensor('float32', Float32Array.from(golden.data), [1, 32]),
      });
      expect(manifest.golden.outputs[0].data).toEqual(Array.from(out.output!.data as Float32Array));
      await session.release();
      expect(res.json.version).toBe(1);
      expect(
        (
          await call('POST', '/api/v1/models/clf/versions', {
            body: mlp(22),
            headers: { 'content-type': 'application/octet-stream' },
          })
        ).json.version,
      ).toBe(2);
      const versions = await call('GET', '/api/v1/models/clf/versions');
      expect(versions.json.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    });

    it('signs manifests that a device holding the fleet key verifies', async () => {
      const v = await call('GET', '/api/v1/models/clf/versions/1');
      const enrolled = await enroll();
      const manifest = verifyManifest(JSON.stringify(v.json.manifest), {
        trustedKeys: enrolled.trustedKeys,
        maxManifestBytes: 1 << 20,
        installedVersion: null,
        now: clock,
        profile: enrolled.profile,
      });
      expect(manifest.artifact.sha256).toBe(v.json.artifact.sha256);
    });

    it('refuses junk with 400 and says why', async () => {
      const res = await call('POST', '/api/v1/models/junk/versions', {
        body: new TextEncoder().encode('definitely not onnx'),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe('invalid_model');
      expect((await call('GET', '/api/v1/models/junk/versions')).status).toBe(404);
    });

    it('a model that cannot run at size 1 needs a sample input: 422 naming the dims, then 201 with one', async () => {
      const refused = await call('POST', '/api/v1/models/pool/versions', {
        body: poolModel(),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(refused.status).toBe(422);
      expect(refused.json.error.code).toBe('golden_unavailable');
      expect(refused.json.error.message).toMatch(/image \[1, 1, H, W\] tried as \[1, 1, 1, 1\]/);
      expect(refused.json.error.message).toMatch(/--sample-input/);

      const form = new FormData();
      form.set('model', new Blob([poolModel()]), 'pool.onnx');
      form.set('sampleInput', JSON.stringify({ inputs: [{ name: 'image', shape: [1, 1, 8, 8] }] }));
      const accepted = await call('POST', '/api/v1/models/pool/versions', { body: form });
      expect(accepted.status).toBe(201);
      expect(accepted.json.manifest.golden.outputs[0].shape).toEqual([1, 1, 6, 6]);

      const badSample = new FormData();
      badSample.set('model', new Blob([poolModel()]), 'pool.onnx');
      badSample.set('sampleInput', JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 1, 8, 8] }] }));
      const named = await call('POST', '/api/v1/models/pool/versions', { body: badSample });
      expect(named.status).toBe(400);
      expect(named.json.error.message).toMatch(/'pixels', which the model does not have/);
    });

    it('refuses a model over the size limit with 413', async () => {
      const res = await call('POST', '/api/v1/models/big/versions', {
        body: new Uint8Array(2_000_001),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(res.status).toBe(413);
    });
  });

  describe('artifacts', () => {
    it('serves byte ranges to operators and to devices with their credentials, and nothing to strangers', async () => {
      const v = (await call('GET', '/api/v1/models/clf/versions/1')).json;
      const url = `/api/v1/artifacts/${v.artifact.sha256}`;
      const whole = await app.request(url, { headers: { authorization: `Bearer ${admin}` } });
      expect(whole.status).toBe(200);
      const all = new Uint8Array(await whole.arrayBuffer());
      expect(all.length).toBe(v.artifact.size);
      expect(whole.headers.get('accept-ranges')).toBe('bytes');
      expect(whole.headers.get('etag')).toBe(`"${v.artifact.sha256}"`);

      const device = await enroll();
      const basic = `Basic ${Buffer.from(`${device.deviceId}:${device.mqtt.password}`).toString('base64')}`;
      const part = await app.request(url, { headers: { authorization: basic, range: 'bytes=100-' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes 100-${all.length - 1}/${all.length}`);
      expect(new Uint8Array(await part.arrayBuffer())).toEqual(all.subarray(100));
      const middle = await app.request(url, { headers: { authorization: basic, range: 'bytes=10-19' } });
      expect(middle.status).toBe(206);
      expect(middle.headers.get('content-range')).toBe(`bytes 10-19/${all.length}`);
      expect(middle.headers.get('content-length')).toBe('10');
      expect(new Uint8Array(await middle.arrayBuffer())).toEqual(all.subarray(10, 20));
      const suffix = await app.request(url, { headers: { authorization: basic, range: 'bytes=-10' } });
      expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(all.subarray(all.length - 10));
      const beyond = await app.request(url, {
        headers: { authorization: basic, range: `bytes=${all.length}-` },
      });
      expect(beyond.status).toBe(416);
      expect(beyond.headers.get('content-range')).toBe(`bytes */${all.length}`);

      const wrongSecret = `Basic ${Buffer.from(`${device.deviceId}:nope`).toString('base64')}`;
      expect((await app.request(url, { headers: { authorization: wrongSecret } })).status).toBe(401);
      expect((await app.request(url)).status).toBe(401);
      expect((await call('GET', `/api/v1/artifacts/${'0'.repeat(64)}`)).status).toBe(404);
    });
  });

  describe('rollouts', () => {
    it('sends one signed install command per targeted device, after persisting the rollout', async () => {
      const a = await enroll({ tags: { fleet: 'r' } });
      const b = await enroll({ tags: { fleet: 'r' } });
      sent.length = 0;
      const res = await call('POST', '/api/v1/rollouts', {
        body: { model: { name: 'clf', version: 2 }, targets: { tags: { fleet: 'r' } } },
      });
      expect(res.status).toBe(201);
      expect(res.json.phase).toBe('progressing');
      expect(res.json.summary).toMatchObject({ total: 2, pending: 2, inProgress: 0, active: 0, failed: 0 });
      expect(sent.map((s) => s.deviceId).sort()).toEqual([a.deviceId, b.deviceId].sort());
      const command = sent[0]!.command;
      expect(command.rolloutId).toBe(res.json.id);
      expect(command.artifactUrl).toMatch(/^http:\/\/fleet\.test\/api\/v1\/artifacts\/[0-9a-f]{64}$/);
      expect(JSON.parse(command.manifest).version).toBe(2);
      expect((await call('GET', `/api/v1/rollouts/${res.json.id}`)).json.devices).toHaveLength(2);
    });

    it('refuses rollouts that target nothing, unknown devices or unknown versions', async () => {
      const none = await call('POST', '/api/v1/rollouts', {
        body: { model: { name: 'clf', version: 1 }, targets: { tags: { nobody: 'here' } } },
      });
      expect(none.json.error.code).toBe('no_targets');
      const unknown = await call('POST', '/api/v1/rollouts', {
        body: { model: { name: 'clf', version: 1 }, targets: { devices: ['dev-ghost'] } },
      });
      expect(unknown.status).toBe(400);
      expect(unknown.json.error.message).toMatch(/unknown device 'dev-ghost'/);
      const version = await call('POST', '/api/v1/rollouts', {
        body: { model: { name: 'clf', version: 99 }, targets: { devices: ['dev-ghost'] } },
      });
      expect(version.status).toBe(404);
      const empty = await call('POST', '/api/v1/rollouts', {
        body: { model: { name: 'clf', version: 1 }, targets: {} },
      });
      expect(empty.status).toBe(400);
    });
  });

  describe('progressive rollouts', () => {
    it('creates a canary from options, shows its spec, and lets roles act: operator pauses, admin promotes', async () => {
      await enroll({ tags: { fleet: 'c' } });
      await enroll({ tags: { fleet: 'c' } });
      expect((await call('POST', '/api/v1/models/canaried/versions', { body: mlp(5, 8) })).status).toBe(201);
      const created = await call('POST', '/api/v1/rollouts', {
        body: {
          model: { name: 'canaried', version: 1 },
          targets: { tags: { fleet: 'c' } },
          strategy: 'canary',
          steps: [50, 100],
          gates: ['p95_latency_ratio<=1.2', 'error_rate<=0.02/10'],
          windowS: 30,
          shadowFirst: false,
        },
      });
      expect(created.status).toBe(201);
      expect(created.json.spec.steps).toEqual([
        { setPercent: 50 },
        { analysis: { windowS: 30, intervalS: 10 } },
        { setPercent: 100 },
      ]);
      expect(created.json.spec.gates).toEqual([
        { metric: 'p95_latency_ratio', threshold: 1.2, minSamples: 50, failureLimit: 0 },
        { metric: 'error_rate', threshold: 0.02, minSamples: 10, failureLimit: 0 },
      ]);
      expect(created.json).toMatchObject({
        phase: 'progressing',
        percent: 50,
        summary: { pending: 1, waiting: 1 },
      });
      const id = created.json.id;

      const again = await call('POST', '/api/v1/rollouts', {
        body: { model: { name: 'canaried', version: 1 }, targets: { tags: { fleet: 'c' } } },
      });
      expect(again.status).toBe(409);
      expect(again.json.error.code).toBe('rollout_in_progress');

      const viewer = await tokenFor('viewer');
      const operator = await tokenFor('operator');
      expect((await call('POST', `/api/v1/rollouts/${id}/pause`, { token: viewer })).status).toBe(403);
      const paused = await call('POST', `/api/v1/rollouts/${id}/pause`, {
        token: operator,
        body: { reason: 'checking' },
      });
      expect(paused.json.status.pause).toMatchObject({
        kind: 'operator',
        by: expect.any(String),
        reason: { message: 'checking' },
      });
      expect((await call('POST', `/api/v1/rollouts/${id}/pause`, { token: operator })).json.error.code).toBe(
        'invalid_phase',
      );
      expect((await call('POST', `/api/v1/rollouts/${id}/promote`, { token: operator })).status).toBe(403);
      sent.length = 0;
      const promoted = await call('POST', `/api/v1/rollouts/${id}/promote`);
      expect(promoted.status).toBe(200);
      expect(promoted.json.percent).toBe(100);
      expect(sent).toHaveLength(1); // the device outside the first cohort
      const aborted = await call('POST', `/api/v1/rollouts/${id}/abort`, {
        token: operator,
        body: { reason: 'no' },
      });
      expect(aborted.json).toMatchObject({
        phase: 'aborted',
        status: { abort: { reason: { code: 'operator_abort', message: 'no' } } },
      });
    });

    it('refuses bad specs with a clear 400', async () => {
      const bad = async (body: Record<string, unknown>) => {
        const res = await call('POST', '/api/v1/rollouts', {
          body: { model: { name: 'clf', version: 1 }, targets: { tags: { fleet: 'c' } }, ...body },
        });
        expect(res.status).toBe(400);
        return res.json.error;
      };
      expect(await bad({ strategy: 'canary', steps: [10, 50] })).toMatchObject({
        code: 'invalid_spec',
        message: expect.stringContaining('end at 100'),
      });
      expect(await bad({ strategy: 'canary', gates: ['speed<=2'] })).toMatchObject({
        code: 'invalid_gate',
        message: expect.stringContaining("unknown metric 'speed'"),
      });
      expect(await bad({ strategy: 'custom' })).toMatchObject({ code: 'invalid_spec' });
      expect(await bad({ strategy: 'custom', spec: { steps: [{ setPercent: 30 }] } })).toMatchObject({
        message: expect.stringContaining('setPercent 100'),
      });
      expect(await bad({ strategy: 'rainbow' })).toMatchObject({ code: 'invalid_input' });
      expect(await bad({ strategy: 'all-at-once', spec: { steps: [] } })).toMatchObject({
        code: 'invalid_spec',
      });
    });
  });

  describe('data pool', () => {
    const csv = 'a,b,label\n1,2,x\n3,4,y\n5,6,x\n';
    it('imports a CSV into a new task, reports stats and snapshots it', async () => {
      const imported = await call('POST', '/api/v1/tasks/sensors/import?format=csv&source=s.csv', {
        body: csv,
        headers: { 'content-type': 'text/csv' },
      });
      expect(imported.status).toBe(201);
      expect(imported.json).toMatchObject({
        created: true,
        accepted: 3,
        task: { name: 'sensors', model: 'sensors', features: ['a', 'b'], classes: ['x', 'y'] },
      });
      const task = await call('GET', '/api/v1/tasks/sensors');
      expect(task.json.stats).toMatchObject({
        samples: 3,
        labeled: 3,
        acceptedBySource: { 'import:s.csv': 3 },
      });
      const snap = await call('POST', '/api/v1/tasks/sensors/snapshots');
      expect(snap.status).toBe(201);
      expect(snap.json).toMatchObject({ task: 'sensors', count: 3, byLabel: { x: 2, y: 1 } });
      expect((await call('GET', `/api/v1/snapshots/${snap.json.id}`)).json.sha256).toBe(snap.json.sha256);
    });

    it('says what is wrong with a bad import, and viewers cannot import', async () => {
      const noLabel = await call('POST', '/api/v1/tasks/other/import?label=nope', { body: csv });
      expect(noLabel.status).toBe(400);
      expect(noLabel.json.error.message).toMatch(/no label column 'nope'/);
      const badFormat = await call('POST', '/api/v1/tasks/other/import?format=xlsx', { body: csv });
      expect(badFormat.status).toBe(400);
      const viewer = await tokenFor('viewer');
      expect((await call('POST', '/api/v1/tasks/other/import', { token: viewer, body: csv })).status).toBe(
        403,
      );
      expect((await call('GET', '/api/v1/tasks/missing')).status).toBe(404);
    });
  });

  it('malformed JSON and unknown routes get JSON errors, never a crash', async () => {
    const malformed = await call('POST', '/api/v1/rollouts', {
      body: '{"model":',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error.code).toBe('invalid_json');
    for (const contentType of ['multipart/form-data; boundary=zzz', 'multipart/form-data']) {
      const multipart = await call('POST', '/api/v1/models/clf/versions', {
        body: 'not multipart at all',
        headers: { 'content-type': contentType },
      });
      expect(multipart.status, contentType).toBe(400);
      expect(multipart.json.error.code).toBe('invalid_input');
    }
    const missing = await call('GET', '/api/v1/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('not_found');
  });
});
