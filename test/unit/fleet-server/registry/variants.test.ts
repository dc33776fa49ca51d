import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { loadOrCreateKeyRing } from '../../../../fleet-server/registry/keys.js';
import {
  type ModelRegistry,
  type ModelVersionRecord,
  versionKey,
} from '../../../../fleet-server/registry/models.js';
import {
  ioDifference,
  variantOf,
  variantsOf,
  versionView,
} from '../../../../fleet-server/registry/variants.js';
import { sha256Hex } from '../../../../shared/crypto/signing.js';
import { verifyManifest } from '../../../../shared/manifest.js';
import { seededMlp } from '../../../../shared/onnx/mlp.js';
import { codeOf } from '../../../support/errors.js';
import { FEATURES, mlp } from '../../../support/models.js';
import { TEST_CPU_PROFILE } from '../../../support/profiles.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';
import { openModelRegistry, sampleReferenceStats } from '../wiring.js';

describe('ModelRegistry variants', () => {
  let store: TempStore;
  let registry: ModelRegistry;
  let keys: Awaited<ReturnType<typeof loadOrCreateKeyRing>>;
  const clock = manualClock();

  beforeAll(async () => {
    store = await openTempStore('fleet-variants-');
    ({ models: registry, keys } = await openModelRegistry(store, clock.now, 1_000_000));
  });
  afterAll(() => store?.close());

  const verifies = (record: { manifest: ModelVersionRecord['manifest'] }, accepts: string[]) =>
    verifyManifest(JSON.stringify(record.manifest), {
      trustedKeys: keys.trusted,
      maxManifestBytes: 1 << 20,
      installedVersion: null,
      now: clock.now(),
      profile: { ...TEST_CPU_PROFILE, acceptsVariants: accepts },
    });

  it('a push without a variant is `default`; with one, the version is created with that variant', async () => {
    const plain = await registry.push('plain', mlp(1, 8), { actor: 'a' });
    expect(plain.manifest.variant).toBe('default');
    expect(variantsOf(plain).map((v) => v.variant)).toEqual(['default']);

    const half = await registry.push('half', mlp(1, 8), { actor: 'a', variant: 'fp16' });
    expect(half.manifest.variant).toBe('fp16');
    expect(versionView(half).variants.map((v) => v.variant)).toEqual(['fp16']);
    expect(verifies(half, ['fp16']).variant).toBe('fp16');
    expect(await codeOf(registry.push('half', mlp(1, 8), { actor: 'a', variant: 'FP 16' }))).toBe(
      'invalid_variant',
    );
  });

  it('adds a variant to a version: its own artifact and manifest, signed, same name and version', async () => {
    clock.advance(60_000);
    const base = await registry.push('clf', mlp(1, 8), { actor: 'alice', labels: { run: 'r1' } });
    clock.advance(60_000);
    const fp16Bytes = mlp(2, 16); // same inputs and outputs, other weights and width
    const record = await registry.addVariant('clf', base.version, fp16Bytes, {
      actor: 'bob',
      variant: 'fp16',
    });

    expect(record.version).toBe(base.version);
    expect(record.manifest).toEqual(base.manifest); // the first variant is untouched
    const view = versionView(record);
    expect(view.variants.map((v) => [v.variant, v.createdBy])).toEqual([
      ['default', 'alice'],
      ['fp16', 'bob'],
    ]);
    expect(view).not.toHaveProperty('addedVariants');
    const fp16 = variantOf(record, 'fp16');
    expect(fp16.artifact).toEqual({ sha256: sha256Hex(Buffer.from(fp16Bytes)), size: fp16Bytes.length });
    expect(fp16.manifest).toMatchObject({
      name: 'clf',
      version: base.version,
      variant: 'fp16',
      artifact: { sha256: fp16.artifact.sha256, size: fp16.artifact.size },
      labels: { run: 'r1' }, // carried over from the version
      createdAt: clock.now().toISOString(),
    });
    expect(fp16.manifest.golden.outputs).not.toEqual(base.manifest.golden.outputs);
    expect(verifies(fp16, ['fp16', 'default']).variant).toBe('fp16');
    expect(() => verifies(fp16, ['default'])).toThrow(/variant 'fp16' is not accepted/);

    // Stored: a later read sees both.
    expect(variantsOf(await registry.get('clf', base.version)).map((v) => v.variant)).toEqual([
      'default',
      'fp16',
    ]);
    expect(variantsOf((await registry.listVersions('clf'))[0]!).map((v) => v.variant)).toEqual([
      'default',
      'fp16',
    ]);
    expect(await codeOf(Promise.resolve().then(() => variantOf(record, 'int8')))).toBe('not_found');
  });

  it('refuses a variant name the version already has (409), leaving the version as it was', async () => {
    const base = await registry.push('dup', mlp(1, 8), { actor: 'a' });
    await registry.addVariant('dup', 1, mlp(2, 8), { actor: 'a', variant: 'fp16' });
    for (const variant of ['fp16', 'default']) {
      await expect(
        registry.addVariant('dup', base.version, mlp(3, 8), { actor: 'a', variant }),
      ).rejects.toMatchObject({
        code: 'variant_exists',
        name: 'ConflictError',
        message: `dup@1 already has a variant '${variant}'; push a new version to change it`,
      });
    }
    expect(variantsOf(await registry.get('dup', 1)).map((v) => v.variant)).toEqual(['default', 'fp16']);
    expect(await codeOf(registry.addVariant('dup', 9, mlp(3, 8), { actor: 'a', variant: 'x' }))).toBe(
      'not_found',
    );
  });

  it('refuses a variant whose inputs or outputs differ, naming the difference', async () => {
    await registry.push('io', mlp(1, 8), { actor: 'a' });
    const cases: [Uint8Array, RegExp][] = [
      [
        seededMlp({ seed: 1, sizes: [FEATURES + 1, 8, 2], softmax: true }),
        /input input has shape \[batch, 33\], the version's has \[batch, 32\]/,
      ],
      [
        seededMlp({ seed: 1, sizes: [FEATURES, 8, 3], softmax: true }),
        /output output has shape \[batch, 3\], the version's has \[batch, 2\]/,
      ],
    ];
    for (const [bytes, message] of cases) {
      const err = await registry.addVariant('io', 1, bytes, { actor: 'a', variant: 'bad' }).catch((e) => e);
      expect(err).toMatchObject({ code: 'variant_io_mismatch', name: 'ValidationError' });
      expect(err.message).toMatch(message);
      expect(err.message).toMatch(/^variant 'bad' does not fit io@1: /);
    }
    expect(variantsOf(await registry.get('io', 1)).map((v) => v.variant)).toEqual(['default']);
  });

  it('compares names, dtypes and fixed dims; symbolic dims match whatever an exporter named them', () => {
    const spec = (name: string, dtype: 'float32' | 'float64', shape: (number | string)[]) => ({
      name,
      dtype,
      shape,
    });
    const version = {
      inputs: [spec('x', 'float32', ['batch', 4])],
      outputs: [spec('y', 'float32', ['batch', 2])],
    };
    expect(
      ioDifference(version, {
        inputs: [spec('x', 'float32', ['N', 4])],
        outputs: [spec('y', 'float32', ['M', 2])],
      }),
    ).toBeNull();
    expect(ioDifference(version, { ...version, inputs: [spec('x', 'float64', ['batch', 4])] })).toBe(
      "input x is float64, the version's is float32",
    );
    expect(ioDifference(version, { ...version, inputs: [spec('z', 'float32', ['batch', 4])] })).toBe(
      "inputs are [z], the version's are [x]",
    );
    expect(ioDifference(version, { ...version, outputs: [spec('y', 'float32', [1, 2])] })).toBe(
      "output y has shape [1, 2], the version's has [batch, 2]",
    );
  });

  it('variants carry the version’s reference statistics unless given their own', async () => {
    const referenceStats = sampleReferenceStats();
    await registry.push('drifty', mlp(1, 8), { actor: 'a', referenceStats });
    const record = await registry.addVariant('drifty', 1, mlp(2, 8), { actor: 'a', variant: 'fp16' });
    expect(variantOf(record, 'fp16').manifest.referenceStats).toEqual(referenceStats);
  });

  it('reads a record written before variants as the single variant `default`', async () => {
    const versions = store.db.collection<ModelVersionRecord>('model-versions');
    const pushed = await registry.push('legacy', mlp(1, 8), { actor: 'a' });
    // As stored before variants: no variant named in the record or in its manifest (signed without the field),
    // no addedVariants, no schema version.
    const { variant: _v, ...oldManifest } = pushed.manifest;
    const { variant: _first, ...old } = pushed;
    await versions.put(versionKey('legacy', 1), {
      ...old,
      manifest: oldManifest as ModelVersionRecord['manifest'],
    } as ModelVersionRecord);
    const record = await registry.get('legacy', 1);
    expect(versionView(record).variants.map((v) => [v.variant, v.artifact.sha256])).toEqual([
      ['default', pushed.artifact.sha256],
    ]);
    const added = await registry.addVariant('legacy', 1, mlp(2, 8), { actor: 'a', variant: 'fp16' });
    expect(variantsOf(added).map((v) => v.variant)).toEqual(['default', 'fp16']);
    expect(
      await codeOf(registry.addVariant('legacy', 1, mlp(3, 8), { actor: 'a', variant: 'default' })),
    ).toBe('variant_exists');
  });

  it('concurrent adds of different variants to one version all land', async () => {
    await registry.push('busy', mlp(1, 8), { actor: 'a' });
    await Promise.all(
      ['fp16', 'int8', 'fp32'].map((variant, i) =>
        registry.addVariant('busy', 1, mlp(10 + i, 8), { actor: 'a', variant }),
      ),
    );
    expect(
      variantsOf(await registry.get('busy', 1))
        .map((v) => v.variant)
        .sort(),
    ).toEqual(['default', 'fp16', 'fp32', 'int8']);
  });
});
