import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ModelRegistry,
  type ModelVersionRecord,
  versionKey,
} from '../../../../fleet-server/registry/models.js';
import { encodeMlp } from '../../../../shared/onnx/mlp.js';
import { codeOf } from '../../../support/errors.js';
import { mlp, poolModel } from '../../../support/models.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';
import { openModelRegistry, sampleReferenceStats } from '../wiring.js';

/** y = Relu(x) with x: float32 [<unnamed dim>, 4]. */
function reluWithUnnamedDim(): Uint8Array {
  const { onnx } = onnxProto;
  const info = (name: string) =>
    onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({
        tensorType: onnx.TypeProto.Tensor.create({
          elemType: onnx.TensorProto.DataType.FLOAT,
          shape: onnx.TensorShapeProto.create({
            dim: [
              onnx.TensorShapeProto.Dimension.create({}),
              onnx.TensorShapeProto.Dimension.create({ dimValue: 4 }),
            ],
          }),
        }),
      }),
    });
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 14 })],
      graph: onnx.GraphProto.create({
        name: 'relu',
        node: [onnx.NodeProto.create({ opType: 'Relu', input: ['x'], output: ['y'] })],
        input: [info('x')],
        output: [info('y')],
      }),
    }),
  ).finish();
}

describe('ModelRegistry', () => {
  let store: TempStore;
  let registry: ModelRegistry;
  const clock = manualClock();

  beforeAll(async () => {
    store = await openTempStore('fleet-models-');
    ({ models: registry } = await openModelRegistry(store, clock.now, 1_000_000));
  });
  afterAll(() => store?.close());

  it('numbers concurrent pushes of one name 1..n without gaps or repeats, per name', async () => {
    const pushed = await Promise.all([
      ...[1, 2, 3, 4].map((seed) => registry.push('race', mlp(seed, 8), { actor: 'a' })),
      registry.push('race-other', mlp(5, 8), { actor: 'a' }),
    ]);
    expect(
      pushed
        .filter((r) => r.name === 'race')
        .map((r) => r.version)
        .sort(),
    ).toEqual([1, 2, 3, 4]);
    expect(pushed.find((r) => r.name === 'race-other')!.version).toBe(1);
    const stored = await registry.listVersions('race');
    expect(stored.map((r) => r.version)).toEqual([1, 2, 3, 4]);
    for (const record of stored) {
      expect(record.manifest.version).toBe(record.version);
      expect(record.manifest.artifact.sha256).toBe(record.artifact.sha256);
    }
    const summary = (await registry.list()).find((m) => m.name === 'race');
    expect(summary).toMatchObject({ latestVersion: 4, versionCount: 4 });
  });

  it('keys each version as <name>/<zero-padded version>, so version 10 sorts after 9', async () => {
    for (let seed = 0; seed < 10; seed++) await registry.push('many', mlp(100 + seed, 4), { actor: 'a' });
    expect((await registry.latest('many'))?.version).toBe(10);
    expect(versionKey('many', 10)).toBe('many/0000000010');
    expect(
      (await store.db.collection<ModelVersionRecord>('model-versions').get('many/0000000010'))?.version,
    ).toBe(10);
  });

  it('signs manifests valid for the configured days, or for the days the push asks', async () => {
    const plain = await registry.push('expiry', mlp(7, 4), { actor: 'a' });
    const days = (r: ModelVersionRecord) =>
      (Date.parse(r.manifest.expiresAt) - Date.parse(r.manifest.createdAt)) / 86_400_000;
    expect(plain.manifest.createdAt).toBe(clock.now().toISOString());
    expect(days(plain)).toBe(30);
    expect(days(await registry.push('expiry', mlp(8, 4), { actor: 'a', expiresInDays: 2 }))).toBe(2);
  });

  it('reads the opset from the model and names dims ONNX leaves unnamed', async () => {
    const layer = { weights: new Float32Array(8), bias: new Float32Array(2), inFeatures: 4, outFeatures: 2 };
    const opset17 = encodeMlp({ layers: [{ ...layer, activation: 'none' }], opset: 17 });
    expect((await registry.push('opset', opset17, { actor: 'a' })).manifest.opset).toBe(17);

    const relu = await registry.push('relu', reluWithUnnamedDim(), { actor: 'a' });
    expect(relu.manifest.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: ['dim0', 4] }]);
    expect(relu.manifest.golden.inputs[0]!.shape).toEqual([1, 4]);
  });

  it('uses sample data exactly as given and checks it against the model', async () => {
    const data = [1, -2, 3, -4, 5, -6, 7, -8];
    const record = await registry.push('relu', reluWithUnnamedDim(), {
      actor: 'a',
      sample: { inputs: [{ name: 'x', shape: [2, 4], data }] },
    });
    expect(record.manifest.golden.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: [2, 4], data }]);
    expect(record.manifest.golden.outputs[0]!.data).toEqual(data.map((v) => Math.max(0, v)));
    expect(record.manifest.golden.tolerance).toEqual({ abs: 1e-5, rel: 1e-4 });

    const refusals = [
      { inputs: [{ name: 'x', shape: [4] }] }, // rank
      { inputs: [{ name: 'x', shape: [2, 5] }] }, // fixed dim
      { inputs: [{ name: 'x', shape: [2, 4], data: [1, 2, 3] }] }, // value count
      { inputs: [{ name: 'y', shape: [2, 4] }] }, // not an input
    ];
    for (const sample of refusals) {
      expect(
        await codeOf(registry.push('relu', reluWithUnnamedDim(), { actor: 'a', sample })),
        JSON.stringify(sample),
      ).toBe('invalid_input');
    }
    expect(
      await codeOf(
        registry.push('pool', poolModel(), {
          actor: 'a',
          sample: { inputs: [{ name: 'image', shape: [1, 1, 1, 1] }] },
        }),
      ),
    ).toBe('golden_unavailable');
    await expect(registry.listVersions('pool')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('refuses oversized models before looking at them, and bad names', async () => {
    expect(await codeOf(registry.push('big', new Uint8Array(1_000_001), { actor: 'a' }))).toBe('too_large');
    await expect(registry.push('Bad Name', mlp(1, 4), { actor: 'a' })).rejects.toThrow();
  });

  it('aliases: unset until set, resolve by name, moves recorded with the previous version', async () => {
    await registry.push('aliased', mlp(1, 4), { actor: 'a' });
    await registry.push('aliased', mlp(2, 4), { actor: 'a' });
    expect(await codeOf(registry.resolve('aliased', 'production'))).toBe('not_found');
    expect(await registry.aliases('aliased')).toEqual({});

    const first = await registry.setAlias('aliased', 'production', 1, 'op');
    expect(first).toMatchObject({ version: 1, previous: null, updatedBy: 'op', moved: true });
    expect((await registry.resolve('aliased', 'production')).version).toBe(1);
    expect(await registry.setAlias('aliased', 'production', 1, 'other')).toMatchObject({
      moved: false,
      updatedBy: 'op',
    });
    expect(await registry.setAlias('aliased', 'production', 2, 'rollout:x')).toMatchObject({
      version: 2,
      previous: 1,
      moved: true,
    });
    expect((await registry.resolve('aliased', 'production')).version).toBe(2);
    expect((await registry.resolve('aliased', 1)).version).toBe(1);
    expect(await codeOf(registry.resolve('aliased', 'latest'))).toBe('invalid_version_ref');
    expect(await codeOf(registry.setAlias('aliased', 'candidate', 3, 'op'))).toBe('not_found');
    const summary = (await registry.list()).find((m) => m.name === 'aliased');
    expect(summary).toMatchObject({ production: 2, candidate: null });
  });

  it('signs reference statistics and labels into the manifest and keeps lineage on the record', async () => {
    const referenceStats = sampleReferenceStats();
    const record = await registry.push('trained', mlp(3, 4), {
      actor: 'training:run-1',
      referenceStats,
      labels: { run: 'run-1' },
    });
    expect(record.manifest.referenceStats).toEqual(referenceStats);
    expect(record.manifest.labels).toEqual({ run: 'run-1' });
    expect(record.lineage).toBeNull();
    // Statistics that do not describe the model's input are refused, naming why.
    await expect(
      registry.push('trained', mlp(3, 4), {
        actor: 'x',
        referenceStats: { schema: 'edgefleet.reference-stats/v1', rows: 3 },
      }),
    ).rejects.toThrow(/reference statistics: .*features/);
  });
});
