/**
 * Model variants over the HTTP API of a real fleet server (LevelDB, ONNX Runtime): a version created with a
 * named variant, variants added to a version (by number or alias), duplicates (409) and other inputs or
 * outputs (400) refused with the reason, versions shown with every variant, and a rollout that would leave a
 * targeted device without a variant refused with a JSON error naming the devices. Devices enroll over HTTP;
 * no agent runs (the e2e suite has them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededMlp } from '../../../shared/onnx/mlp.js';
import { ApiError, startTestFleet, type TestFleet } from '../../support/fleet.js';
import { FEATURES, mlp } from '../../support/models.js';

describe('model variants over the API', () => {
  let env: TestFleet;

  beforeAll(async () => {
    env = await startTestFleet();
  });
  afterAll(async () => env?.close());

  const refusal = async (promise: Promise<unknown>) => {
    const err = await promise.then(
      () => {
        throw new Error('expected the API to refuse');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  };
  const post = (path: string, bytes: Uint8Array) => env.api.request('POST', `/api/v1${path}`, bytes);
  const enroll = async (profile: string) => {
    const { token } = await env.api.enrollmentToken({ profile, tags: { site: 'mixed' } });
    const res = await fetch(`${env.fleet.httpUrl}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { deviceId: string }).deviceId;
  };

  it('creates a version with a named variant, adds more, and shows every variant', async () => {
    const created = await post('/models/clf/versions?variant=fp16', mlp(1, 8));
    expect(created).toMatchObject({ name: 'clf', version: 1, manifest: { variant: 'fp16' }, aliases: [] });
    expect(created.variants.map((v: { variant: string }) => v.variant)).toEqual(['fp16']);

    const added = await post('/models/clf/versions/1/variants/default', mlp(2, 8));
    expect(added.version).toBe(1);
    expect(added.manifest.variant).toBe('fp16'); // the version's first variant stays first
    expect(added.variants.map((v: any) => [v.variant, v.manifest.variant, v.manifest.version])).toEqual([
      ['fp16', 'fp16', 1],
      ['default', 'default', 1],
    ]);
    const defaultVariant = added.variants[1];
    expect(defaultVariant.artifact.sha256).toBe(defaultVariant.manifest.artifact.sha256);
    expect(defaultVariant.artifact.sha256).not.toBe(added.variants[0].artifact.sha256);
    expect(defaultVariant.manifest.signatures).toHaveLength(1);

    const shown = await env.api.request('GET', '/api/v1/models/clf/versions/1');
    expect(shown.variants).toEqual(added.variants);
    expect(shown).not.toHaveProperty('addedVariants');
    const listed = await env.api.request('GET', '/api/v1/models/clf/versions');
    expect(listed.versions[0].variants.map((v: { variant: string }) => v.variant)).toEqual([
      'fp16',
      'default',
    ]);

    // The artifact of an added variant is served like any other.
    const res = await fetch(`${env.fleet.httpUrl}/api/v1/artifacts/${defaultVariant.artifact.sha256}`, {
      headers: { authorization: `Bearer ${env.fleet.adminToken}` },
    });
    expect(Buffer.from(await res.arrayBuffer())).toEqual(Buffer.from(mlp(2, 8)));
  });

  it('adds a variant to the version an alias names', async () => {
    await post('/models/aliased/versions', mlp(1, 8));
    await env.api.request('PUT', '/api/v1/models/aliased/aliases/production', { version: 1 });
    const added = await post('/models/aliased/versions/production/variants/int8', mlp(3, 8));
    expect(added.version).toBe(1);
    expect(added.aliases).toEqual(['production']);
    expect(added.variants.map((v: { variant: string }) => v.variant)).toEqual(['default', 'int8']);
  });

  it('refuses a duplicate variant (409), other inputs or outputs (400), bad names (400), unknown versions (404)', async () => {
    await post('/models/strict/versions', mlp(1, 8));
    await post('/models/strict/versions/1/variants/fp16', mlp(2, 8));

    const dup = await refusal(post('/models/strict/versions/1/variants/fp16', mlp(3, 8)));
    expect(dup.status).toBe(409);
    expect(dup.body.error).toEqual({
      code: 'variant_exists',
      message: "strict@1 already has a variant 'fp16'; push a new version to change it",
    });
    const first = await refusal(post('/models/strict/versions/1/variants/default', mlp(3, 8)));
    expect(first.status).toBe(409);

    const wider = seededMlp({ seed: 4, sizes: [FEATURES * 2, 8, 2], softmax: true });
    const io = await refusal(post('/models/strict/versions/1/variants/wide', wider));
    expect(io.status).toBe(400);
    expect(io.body.error).toEqual({
      code: 'variant_io_mismatch',
      message:
        "variant 'wide' does not fit strict@1: input input has shape [batch, 64], the version's has [batch, 32] (every variant of a version has the same inputs and outputs)",
    });

    const badName = await refusal(post('/models/strict/versions/1/variants/FP16', mlp(3, 8)));
    expect([badName.status, badName.body.error.code]).toEqual([400, 'invalid_variant']);
    const badQuery = await refusal(post('/models/strict/versions?variant=has%20space', mlp(3, 8)));
    expect([badQuery.status, badQuery.body.error.code]).toEqual([400, 'invalid_variant']);
    expect(badQuery.body.error.message).toMatch(/^invalid variant 'has space': variant name: /);

    const missing = await refusal(post('/models/strict/versions/7/variants/int8', mlp(3, 8)));
    expect(missing.status).toBe(404);
    const empty = await refusal(post('/models/strict/versions/1/variants/int8', new Uint8Array(0)));
    expect(empty.body.error.code).toBe('invalid_model');

    const versions = await env.api.request('GET', '/api/v1/models/strict/versions');
    expect(versions.versions).toHaveLength(1);
    expect(versions.versions[0].variants.map((v: { variant: string }) => v.variant)).toEqual([
      'default',
      'fp16',
    ]);
  });

  it('a viewer may read variants but not add one', async () => {
    const { token } = await env.api.request('POST', '/api/v1/tokens', { role: 'viewer' });
    const res = await fetch(`${env.fleet.httpUrl}/api/v1/models/clf/versions/1/variants/int8`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: mlp(5, 8),
    });
    expect(res.status).toBe(403);
  });

  it('refuses a rollout that leaves targeted devices without a variant, naming them; accepts one that does not', async () => {
    const cpu = [await enroll('x86_64-cpu'), await enroll('raspberry-pi-5')];
    const gpu = await enroll('x86_64-cuda');
    await post('/models/halfonly/versions?variant=fp16', mlp(1, 8));

    const before = (await env.api.request('GET', '/api/v1/rollouts')).rollouts.length;
    const refused = await refusal(env.api.createRollout('halfonly', 1, { tags: { site: 'mixed' } }));
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('no_variant_for_devices');
    const { message } = refused.body.error;
    expect(message).toMatch(/^halfonly@1 has no variant for 2 targeted device\(s\): /);
    for (const id of cpu) expect(message).toContain(id);
    expect(message).toContain('(x86_64-cpu)');
    expect(message).toContain('raspberry-pi-5 accepts default, fp32');
    expect(message).toContain('The version offers fp16');
    expect(message).not.toContain(gpu);
    expect((await env.api.request('GET', '/api/v1/rollouts')).rollouts).toHaveLength(before);

    // The GPU device alone can take it; the rollout records its variant.
    const ok = await env.api.createRollout('halfonly', 1, { devices: [gpu] });
    expect(ok.devices).toMatchObject([{ deviceId: gpu, variant: 'fp16' }]);
    const shown = await env.api.rollout(ok.id);
    expect(shown.devices[0].variant).toBe('fp16');
  });
});
