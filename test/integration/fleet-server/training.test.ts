/**
 * Training runs through a real fleet server: the HTTP API queues a run, a worker thread trains it with
 * TF.js, and the registry signs the exported ONNX with its lineage and reference statistics. Also: the
 * champion/challenger comparison after a promote, deterministic re-training, interrupted runs, and every
 * kind of bad training request answered with its 4xx.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyManifest } from '../../../shared/manifest.js';
import { mulberry32 } from '../../../shared/onnx/mlp.js';
import { ApiError, startTestFleet, type TestFleet } from '../../support/fleet.js';
import { waitFor } from '../../support/wait.js';

const SMALL = { hidden: [16], epochs: 15, batchSize: 32, optimizer: { learningRate: 0.01 } };

/** A learnable CSV: `pass` when 2·f0 − f1 + f2 > 0; or, for regression, that value plus a little noise. */
function csv(rows: number, seed: number, kind: 'classification' | 'regression' = 'classification'): string {
  const random = mulberry32(seed);
  const lines = ['f0,f1,f2,f3,label'];
  for (let r = 0; r < rows; r++) {
    const f = Array.from({ length: 4 }, () => Math.round((random() * 4 - 2) * 1000) / 1000);
    const score = 2 * f[0]! - f[1]! + f[2]!;
    const label =
      kind === 'classification' ? (score > 0 ? 'pass' : 'fail') : (score + (random() - 0.5) * 0.1).toFixed(4);
    lines.push([...f, label].join(','));
  }
  return `${lines.join('\n')}\n`;
}

async function status(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, code: err.body?.error?.code };
    throw err;
  }
  throw new Error('expected the request to fail');
}

describe('training runs', () => {
  let env: TestFleet;
  const importCsv = (task: string, text: string, query = '') =>
    env.api.request(
      'POST',
      `/api/v1/tasks/${task}/import?format=csv&source=${task}.csv${query}`,
      new TextEncoder().encode(text),
    );

  beforeAll(async () => {
    env = await startTestFleet();
    await importCsv('quality', csv(400, 1));
  });
  afterAll(() => env?.close());

  let first: any;

  it('trains a snapshot in the background and registers a signed candidate with lineage', async () => {
    const queued = await env.api.train('quality', { config: SMALL });
    expect(queued).toMatchObject({ task: 'quality', model: 'quality', status: 'queued', result: null });
    expect(queued.snapshot).toMatch(/^snap-[0-9a-f]{16}$/);
    expect(queued.config).toMatchObject({ kind: 'classification', hidden: [16], seed: 42, epochs: 15 });

    first = await env.api.settledRun(queued.id);
    expect(first.error).toBeNull();
    expect(first.status).toBe('succeeded');
    expect(first.backend).toMatch(/^(wasm|cpu|tensorflow|tensorflow-gpu)$/);
    expect(first.history.length).toBeGreaterThan(0);
    expect(first.progress.epoch).toBe(first.history.length);
    expect(first.progress.epochs).toBe(15);
    expect(first.result.version).toBe(1);
    // 2·f0 − f1 + f2 is linear: a trained MLP gets most of the holdout right (chance is about 0.5).
    expect(first.result.metrics.accuracy).toBeGreaterThan(0.85);
    expect(first.result.metrics.kind).toBe('classification');
    expect(first.result.champion).toBeNull();
    expect(first.result.parityMaxAbsDiff).toBeLessThanOrEqual(1e-4);

    const version = await env.api.request('GET', '/api/v1/models/quality/versions/1');
    expect(version.aliases).toEqual(['candidate']);
    expect(version.lineage).toMatchObject({
      run: queued.id,
      task: 'quality',
      snapshot: queued.snapshot,
      seed: 42,
      backend: first.backend,
      metrics: { accuracy: first.result.metrics.accuracy, logLoss: first.result.metrics.logLoss },
      champion: null,
      trainRows: first.result.trainRows,
      holdoutRows: first.result.holdoutRows,
    });
    expect(version.lineage.config).toEqual(first.config);
    expect(version.lineage.codeVersion).toMatch(/^0\.1\.0/);
    expect(version.lineage.trainRows + version.lineage.holdoutRows).toBe(400);
    // Reference statistics and lineage pointers are inside the signed manifest; the signature holds.
    expect(version.manifest.referenceStats.features.map((f: any) => f.name)).toEqual([
      'f0',
      'f1',
      'f2',
      'f3',
    ]);
    expect(version.manifest.labels).toEqual({ task: 'quality', snapshot: queued.snapshot, run: queued.id });
    const { token } = await env.api.enrollmentToken();
    const enrolled = await fetch(`${env.fleet.httpUrl}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token, facts: { hostname: 'verifier' } }),
    }).then((r) => r.json() as Promise<any>);
    const verified = verifyManifest(JSON.stringify(version.manifest), {
      trustedKeys: enrolled.trustedKeys,
      maxManifestBytes: 1 << 20,
      installedVersion: null,
      now: new Date(),
      profile: enrolled.profile,
    });
    expect(verified.referenceStats).toEqual(version.manifest.referenceStats);

    const lineage = await env.api.request('GET', '/api/v1/models/quality/versions/candidate/lineage');
    expect(lineage.sources).toEqual([{ source: 'import:quality.csv', kind: 'import', samples: 400 }]);
    expect(lineage.snapshot).toMatchObject({ id: queued.snapshot, count: 400, labeled: 400 });
    expect(lineage.run).toMatchObject({ id: queued.id, status: 'succeeded' });
    expect(lineage.version).toMatchObject({ name: 'quality', version: 1, aliases: ['candidate'] });
    expect(lineage.rollouts).toEqual([]);
  });

  it('re-training the same snapshot with the same config and seed gives the same metrics and bytes', async () => {
    const again = await env.api.settledRun(
      (await env.api.train('quality', { snapshot: first.snapshot, config: SMALL })).id,
    );
    expect(again.status).toBe('succeeded');
    expect(again.backend).toBe(first.backend);
    expect(again.result.version).toBe(2);
    expect(again.result.metrics).toEqual(first.result.metrics);
    expect(again.history).toEqual(first.history);
    const [v1, v2] = await Promise.all(
      [1, 2].map((v) => env.api.request('GET', `/api/v1/models/quality/versions/${v}`)),
    );
    expect(v2.artifact.sha256).toBe(v1.artifact.sha256);
    // The candidate alias follows the newest trained version.
    expect(v2.aliases).toEqual(['candidate']);
    expect(v1.aliases).toEqual([]);
  });

  it('evaluates the production version on the challenger’s holdout once one is promoted', async () => {
    const promoted = await env.api.request('PUT', '/api/v1/models/quality/aliases/production', {
      version: 1,
    });
    expect(promoted).toMatchObject({
      name: 'quality',
      alias: 'production',
      version: 1,
      previous: null,
      moved: true,
    });
    const aliases = await env.api.request('GET', '/api/v1/models/quality/aliases');
    expect(aliases.aliases.production.version).toBe(1);
    expect(aliases.aliases.candidate.version).toBe(2);

    const challenger = await env.api.settledRun(
      (
        await env.api.train('quality', {
          snapshot: first.snapshot,
          config: { ...SMALL, hidden: [8], seed: 7 },
        })
      ).id,
    );
    expect(challenger.status).toBe('succeeded');
    // The split depends only on record ids, so the champion is scored on exactly v1's holdout rows.
    expect(challenger.result.champion).toEqual({ version: 1, metrics: first.result.metrics, reason: null });
    expect(challenger.result.metrics).not.toEqual(first.result.metrics);
    const v3 = await env.api.request('GET', '/api/v1/models/quality/versions/3');
    expect(v3.lineage.champion).toEqual({
      version: 1,
      metrics: v3.lineage.champion.metrics,
      reason: null,
    });
    expect(v3.lineage.champion.metrics.accuracy).toBe(first.result.metrics.accuracy);
    const listed = await env.api.request('GET', '/api/v1/models');
    expect(listed.models).toEqual([
      expect.objectContaining({ name: 'quality', latestVersion: 3, production: 1, candidate: 3 }),
    ]);
  });

  it('trains a regressor', async () => {
    await importCsv('load', csv(300, 2, 'regression'), '&kind=regression');
    const run = await env.api.settledRun(
      (await env.api.train('load', { config: { ...SMALL, epochs: 25 } })).id,
    );
    expect(run.status).toBe('succeeded');
    expect(run.result.metrics.kind).toBe('regression');
    // The target's standard deviation is about 2.4; a fitted model is far closer than predicting the mean.
    expect(run.result.metrics.rmse).toBeLessThan(1);
    const version = await env.api.request('GET', `/api/v1/models/load/versions/${run.result.version}`);
    expect(version.manifest.outputs[0].shape).toEqual(['batch', 1]);
    expect(version.manifest.referenceStats.predictions.kind).toBe('regression');
  });

  it('refuses bad training requests with a clear 4xx and stays healthy', async () => {
    expect(await status(env.api.train('no-such-task'))).toEqual({ status: 404, code: 'not_found' });
    expect(await status(env.api.train('quality', { config: { epochs: -1 } }))).toMatchObject({
      status: 400,
      code: 'invalid_config',
    });
    expect(await status(env.api.train('quality', { config: { kind: 'regression' } }))).toMatchObject({
      status: 400,
      code: 'invalid_config',
    });
    expect(await status(env.api.train('quality', { config: { layers: 3 } }))).toMatchObject({
      status: 400,
      code: 'invalid_config',
    });
    expect(await status(env.api.train('quality', { snapshot: 'snap-0000000000000000' }))).toMatchObject({
      status: 404,
    });
    const loadSnapshot = await env.api.request('POST', '/api/v1/tasks/load/snapshots');
    expect(await status(env.api.train('quality', { snapshot: loadSnapshot.id }))).toEqual({
      status: 400,
      code: 'snapshot_task_mismatch',
    });
    expect(
      await status(env.api.request('POST', '/api/v1/tasks/quality/train', { snapshot: 1, extra: true })),
    ).toMatchObject({ status: 400 });
    await importCsv('tiny', 'a,b,label\n1,2,x\n3,4,y\n');
    expect(await status(env.api.train('tiny'))).toEqual({ status: 422, code: 'not_enough_labeled_samples' });
    const viewer = await env.api.request('POST', '/api/v1/tokens', { role: 'viewer' });
    const asViewer = new (env.api.constructor as any)(env.fleet.httpUrl, viewer.token);
    expect(await status(asViewer.train('quality'))).toMatchObject({ status: 403 });
    expect((await asViewer.request('GET', '/api/v1/training-runs?task=quality')).runs.length).toBe(3);
    expect(
      await status(env.api.request('PUT', '/api/v1/models/quality/aliases/latest', { version: 1 })),
    ).toEqual({
      status: 400,
      code: 'invalid_version_ref',
    });
    expect(
      await status(env.api.request('PUT', '/api/v1/models/quality/aliases/production', { version: 99 })),
    ).toMatchObject({
      status: 404,
    });
    expect(await status(env.api.request('GET', '/api/v1/models/quality/versions/latest'))).toMatchObject({
      status: 400,
    });
    expect(await env.api.request('GET', '/api/v1/health')).toMatchObject({ ok: true });
  });

  it('a run cut off by a fleet-server stop is recorded as interrupted, and the fleet trains again after', async () => {
    const long = await env.api.train('quality', {
      snapshot: first.snapshot,
      config: { ...SMALL, epochs: 5000, earlyStopping: { patience: 5000 } },
    });
    await waitFor(
      async () =>
        (await env.api.request('GET', `/api/v1/training-runs/${long.id}`)).progress ? true : undefined,
      'the long run to report an epoch',
      60_000,
      50,
    );
    await env.restart();
    const after = await env.api.request('GET', `/api/v1/training-runs/${long.id}`);
    expect(after.status).toBe('failed');
    expect(after.error.code).toBe('interrupted');
    const next = await env.api.settledRun(
      (await env.api.train('quality', { snapshot: first.snapshot, config: { ...SMALL, epochs: 1 } })).id,
    );
    expect(next.status).toBe('succeeded');
  });
});
