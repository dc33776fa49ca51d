/**
 * The drift and retrain routes over HTTP against a real fleet server: what a viewer may read and may not
 * change, and a clear 4xx with a JSON body for every bad request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driftReport } from '../../support/drift.js';
import { ApiError, startTestFleet, type TestFleet } from '../../support/fleet.js';

async function status(promise: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiError)
      return { status: err.status, code: err.body?.error?.code, message: err.body?.error?.message };
    throw err;
  }
  throw new Error('expected the request to fail');
}

describe('drift and retrain API', () => {
  let env: TestFleet;
  let asViewer: TestFleet['api'];

  beforeAll(async () => {
    env = await startTestFleet();
    await env.api.request(
      'POST',
      '/api/v1/tasks/quality/import?format=csv&source=a.csv',
      new TextEncoder().encode('a,b,label\n1,2,x\n3,4,y\n'),
    );
    const viewer = await env.api.request('POST', '/api/v1/tokens', { role: 'viewer' });
    asViewer = new (env.api.constructor as any)(env.fleet.httpUrl, viewer.token);
  });
  afterAll(async () => env?.close());

  it('viewers read drift, policies and retrains; only operators change them', async () => {
    await env.api.request('PUT', '/api/v1/tasks/quality/retrain-policy', { deviceShare: 0.4 });
    expect((await asViewer.request('GET', '/api/v1/tasks/quality/retrain-policy')).policy).toMatchObject({
      deviceShare: 0.4,
      mode: 'approve',
    });
    expect(await asViewer.request('GET', '/api/v1/drift')).toEqual({ models: [] });
    expect(await asViewer.request('GET', '/api/v1/retrains')).toEqual({ retrains: [] });
    expect(await asViewer.request('GET', '/api/v1/drift/quality/versions/1/timeline')).toEqual({
      model: 'quality',
      version: 1,
      bucketS: 60,
      points: [],
    });
    expect(await status(asViewer.request('PUT', '/api/v1/tasks/quality/retrain-policy', {}))).toMatchObject({
      status: 403,
    });
    expect(await status(asViewer.request('POST', '/api/v1/tasks/quality/retrain', {}))).toMatchObject({
      status: 403,
    });
    expect(await status(asViewer.request('POST', '/api/v1/retrains/rt-x/approve', {}))).toMatchObject({
      status: 403,
    });
  });

  it("reads one device's latest drift report; a device without one is a 404 that says so", async () => {
    await env.fleet.drift.record('dev-a', driftReport(1, 'no_drift', { model: 'quality' }));
    await env.fleet.drift.record('dev-a', driftReport(2, 'drift', { model: 'quality', drifted: ['b'] }));
    await env.fleet.drift.record('dev-b', driftReport(2, 'no_drift', { model: 'quality' }));
    const report = await asViewer.request('GET', '/api/v1/drift/quality/devices/dev-a');
    expect(report).toMatchObject({ deviceId: 'dev-a', model: 'quality', version: 2, verdict: 'drift' });
    expect(report.features.map((f: { name: string; drifted: boolean }) => [f.name, f.drifted])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    expect(await status(asViewer.request('GET', '/api/v1/drift/quality/devices/dev-c'))).toEqual({
      status: 404,
      code: 'not_found',
      message: "drift report for quality from device 'dev-c' not found",
    });
  });

  it('answers bad requests with a 4xx that names the problem', async () => {
    expect(
      await status(env.api.request('PUT', '/api/v1/tasks/quality/retrain-policy', { deviceShare: 0 })),
    ).toMatchObject({
      status: 400,
      code: 'invalid_policy',
      message: expect.stringMatching(/deviceShare/),
    });
    expect(
      await status(env.api.request('PUT', '/api/v1/tasks/quality/retrain-policy', { mode: 'sometimes' })),
    ).toMatchObject({
      status: 400,
      message: expect.stringMatching(/mode/),
    });
    expect(
      await status(env.api.request('PUT', '/api/v1/tasks/quality/retrain-policy', [1, 2])),
    ).toMatchObject({ status: 400 });
    expect(
      await status(
        env.api.request('PUT', '/api/v1/tasks/quality/retrain-policy', 'not json', {
          'content-type': 'application/json',
        }),
      ),
    ).toMatchObject({
      status: 400,
    });
    expect(await status(env.api.request('PUT', '/api/v1/tasks/nope/retrain-policy', {}))).toMatchObject({
      status: 404,
    });
    expect(await status(env.api.request('GET', '/api/v1/drift?task=nope'))).toMatchObject({ status: 404 });
    expect(await status(env.api.request('GET', '/api/v1/drift?cohort=site'))).toMatchObject({
      status: 400,
      code: 'invalid_cohort',
      message: "cohort must be 'profile' or 'tag:<key>', got 'site'",
    });
    expect(
      await status(env.api.request('GET', '/api/v1/drift/quality/versions/zero/timeline')),
    ).toMatchObject({ status: 400 });
    expect(
      await status(env.api.request('GET', '/api/v1/drift/quality/versions/1/timeline?bucketS=-5')),
    ).toMatchObject({ status: 400 });
    expect(await status(env.api.request('GET', '/api/v1/retrains/rt-nope'))).toMatchObject({ status: 404 });
    expect(await status(env.api.request('POST', '/api/v1/retrains/rt-nope/approve', {}))).toMatchObject({
      status: 404,
    });
    expect(
      await status(env.api.request('POST', '/api/v1/tasks/quality/retrain', { reason: 'x', extra: 1 })),
    ).toMatchObject({ status: 400 });
    // Two labeled rows are too few to train on: the retrain is recorded as failed, saying why.
    const record = await env.api.request('POST', '/api/v1/tasks/quality/retrain', { reason: 'try it' });
    await env.fleet.retrains.idle();
    expect(await env.api.request('GET', `/api/v1/retrains/${record.id}`)).toMatchObject({
      status: 'failed',
      error: { code: 'not_enough_labeled_samples' },
    });
  });
});
