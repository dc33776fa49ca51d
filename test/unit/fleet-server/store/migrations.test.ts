/**
 * Stored records migrated on read: a rollout written as the previous release wrote it (no schema version,
 * devices without `issuedAt`) reads back in the current shape through every read path; writes carry the
 * current version; a record from a newer release is refused by name. Real LevelDB in a temp dir.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceRegistry } from '../../../../fleet-server/devices/registry.js';
import { Pool } from '../../../../fleet-server/pool/pool.js';
import { SNAPSHOT_MIGRATIONS, Snapshots } from '../../../../fleet-server/pool/snapshots.js';
import {
  MODEL_VERSION_MIGRATIONS,
  type ModelRegistry,
  type ModelVersionRecord,
  versionKey,
} from '../../../../fleet-server/registry/models.js';
import { variantsOf, versionView } from '../../../../fleet-server/registry/variants.js';
import {
  newRollout,
  ROLLOUT_MIGRATIONS,
  type RolloutRecord,
} from '../../../../fleet-server/rollouts/record.js';
import { presetSpec } from '../../../../fleet-server/rollouts/spec.js';
import type { Collection } from '../../../../fleet-server/store/db.js';
import {
  type Migrations,
  migrated,
  rolloutVariantsStep,
  SchemaVersionError,
} from '../../../../fleet-server/store/migrations.js';
import { TRAINING_RUN_MIGRATIONS, TrainingRuns } from '../../../../fleet-server/training/runs.js';
import { mlp } from '../../../support/models.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';
import { openModelRegistry } from '../wiring.js';

/** A v1 rollout record as cf9a7a6 stored it: one device sent its install at `sentAt`, no `issuedAt`. */
function v1Record(id: string): Record<string, unknown> {
  const current = newRollout({
    id,
    model: { name: 'clf', version: 1 },
    targets: { tags: { site: 'a' } },
    spec: presetSpec('all-at-once'),
    deviceIds: ['dev-a', 'dev-b'],
    cohortKey: () => 0.5,
    actor: 'op',
    now: new Date('2026-11-01T00:00:00.000Z'),
  });
  const devices = current.devices.map(({ issuedAt: _dropped, ...d }, i) =>
    i === 0 ? { ...d, state: 'pending', commandId: 'c1', sentAt: '2026-11-01T00:01:00.000Z' } : d,
  );
  return { ...current, devices };
}

describe('migrated collections', () => {
  let store: TempStore;
  let raw: Collection<Record<string, unknown>>;
  let rollouts: Collection<RolloutRecord>;
  beforeAll(async () => {
    store = await openTempStore('fleet-migrations-');
    raw = store.db.collection<Record<string, unknown>>('rollouts');
    rollouts = migrated(store.db.collection<RolloutRecord>('rollouts'), ROLLOUT_MIGRATIONS);
  });
  afterAll(() => store?.close());

  it('reads a v1 rollout in the current shape through get, values, entries, getMany and range', async () => {
    await raw.put('ro-1', v1Record('ro-1'));
    const reads = [
      await rollouts.get('ro-1'),
      (await rollouts.values())[0],
      (await rollouts.entries())[0]![1],
      (await rollouts.getMany(['ro-1']))[0],
      (await rollouts.range({ limit: 1 }))[0]![1],
    ];
    for (const read of reads) {
      expect(read).not.toHaveProperty('schemaVersion');
      expect(read!.devices.map((d) => [d.deviceId, d.sentAt, d.issuedAt])).toEqual([
        ['dev-a', '2026-11-01T00:01:00.000Z', '2026-11-01T00:01:00.000Z'],
        ['dev-b', null, null],
      ]);
    }
    // Reads do not rewrite: the stored record is still v1 until its owner writes it.
    expect(await raw.get('ro-1')).not.toHaveProperty('schemaVersion');
  });

  it('writes carry the current version, and a current record reads back unchanged', async () => {
    const current = (await rollouts.get('ro-1'))!;
    await rollouts.put('ro-1', current);
    expect(await raw.get('ro-1')).toMatchObject({ schemaVersion: ROLLOUT_MIGRATIONS.version });
    expect(await rollouts.get('ro-1')).toEqual(current);
  });

  it('refuses a record written by a newer release, naming the collection, the key and both versions', async () => {
    await raw.put('ro-new', { ...v1Record('ro-new'), schemaVersion: ROLLOUT_MIGRATIONS.version + 1 });
    const refusal = rollouts.get('ro-new');
    await expect(refusal).rejects.toBeInstanceOf(SchemaVersionError);
    await expect(rollouts.get('ro-new')).rejects.toThrow(
      `rollouts record 'ro-new' has schema version ${ROLLOUT_MIGRATIONS.version + 1}, newer than this fleet server knows (${ROLLOUT_MIGRATIONS.version})`,
    );
    await raw.del('ro-new');
  });

  it('runs each step once per read, in order, from the stored version up', async () => {
    const calls: string[] = [];
    const m: Migrations<{ n: number[] }> = {
      name: 'things',
      version: 3,
      steps: [
        (r) => {
          calls.push('1→2');
          return { ...r, n: [...(r.n as number[]), 2] };
        },
        (r) => {
          calls.push('2→3');
          return { ...r, n: [...(r.n as number[]), 3] };
        },
      ],
    };
    const things = migrated(store.db.collection<{ n: number[] }>('things'), m);
    const rawThings = store.db.collection<Record<string, unknown>>('things');
    await rawThings.put('a', { n: [1] });
    await rawThings.put('b', { n: [1, 2], schemaVersion: 2 });
    expect(await things.get('a')).toEqual({ n: [1, 2, 3] });
    expect(calls).toEqual(['1→2', '2→3']);
    calls.length = 0;
    expect(await things.get('b')).toEqual({ n: [1, 2, 3] });
    expect(calls).toEqual(['2→3']);
    expect(() => migrated(store.db.collection('x'), { ...m, version: 4 })).toThrow(/needs 3 migration steps/);
  });
});

/**
 * Each collection with migrations, read through the module that owns it: a record written raw into LevelDB
 * in the shape an earlier release stored (no schema version; shapes from `git show <commit>:<file>`) reads
 * back in the current shape, and the owner's next write stores the current version.
 */
describe('collections read as the current version', () => {
  const clock = manualClock();
  let store: TempStore;
  let models: ModelRegistry;
  let snapshots: Snapshots;
  let runs: TrainingRuns;
  const raw = (name: string) => store.db.collection<Record<string, unknown>>(name);

  beforeAll(async () => {
    store = await openTempStore('fleet-migrated-');
    const opened = await openModelRegistry(store, clock.now);
    models = opened.models;
    const pool = new Pool(store.db);
    snapshots = new Snapshots(store.db.collection('snapshots'), opened.artifacts, pool);
    runs = new TrainingRuns(store.db.collection('training-runs'), pool, snapshots, models, opened.artifacts, {
      runner: () => Promise.reject(new Error('no training in these tests')),
      codeVersion: 'test',
      now: clock.now,
      log: pino({ level: 'silent' }),
    });
  });
  afterAll(() => store?.close());

  /** A version pushed now, rewritten raw as `old` says an earlier release stored it. */
  async function storedAs(name: string, old: (current: ModelVersionRecord) => Record<string, unknown>) {
    const pushed = await models.push(name, mlp(1, 8), { actor: 'op' });
    await raw('model-versions').put(versionKey(name, 1), old(pushed));
    return pushed;
  }

  it('model-versions v1 from before variants: the single variant `default`, its signed manifest untouched', async () => {
    // b6a80bf^: no variant anywhere, no addedVariants; 5313613^: a lineage without recent or trigger.
    const pushed = await storedAs('before-variants', ({ variant: _v, ...record }) => {
      const { variant: _mv, ...manifest } = record.manifest;
      return { ...record, manifest, lineage: LINEAGE_5313613_PARENT };
    });
    const read = await models.get('before-variants', 1);
    expect(read.variant).toBe('default');
    expect(read.manifest).not.toHaveProperty('variant'); // signed without it: never edited
    expect(read.manifest.signatures).toEqual(pushed.manifest.signatures);
    expect(variantsOf(read).map((v) => [v.variant, v.artifact.sha256])).toEqual([
      ['default', pushed.artifact.sha256],
    ]);
    expect(read.lineage).toEqual({ ...LINEAGE_5313613_PARENT, recent: null, trigger: null });
    expect((await models.listVersions('before-variants'))[0]).toEqual(read);
    expect(await models.latest('before-variants')).toEqual(read);
    // The API's view of a version is what it was: the record's own field stays in the store.
    expect(versionView(read)).not.toHaveProperty('variant');
    expect(versionView(read)).not.toHaveProperty('schemaVersion');
  });

  it('model-versions v1 from cf9a7a6: the first variant named by its manifest', async () => {
    await storedAs('variants-unversioned', ({ variant: _v, ...record }) => ({
      ...record,
      manifest: { ...record.manifest, variant: 'fp16' },
    }));
    expect((await models.get('variants-unversioned', 1)).variant).toBe('fp16');
    // The owner's next write stores the current version, variant named.
    await models.addVariant('variants-unversioned', 1, mlp(2, 8), { actor: 'op', variant: 'int8' });
    expect(await raw('model-versions').get(versionKey('variants-unversioned', 1))).toMatchObject({
      schemaVersion: MODEL_VERSION_MIGRATIONS.version,
      variant: 'fp16',
    });
    expect(variantsOf(await models.get('variants-unversioned', 1)).map((v) => v.variant)).toEqual([
      'fp16',
      'int8',
    ]);
  });

  it('a model version from a newer release is refused through the registry, named', async () => {
    const pushed = await models.push('from-the-future', mlp(3, 8), { actor: 'op' });
    await raw('model-versions').put(versionKey('from-the-future', 1), { ...pushed, schemaVersion: 99 });
    await expect(models.get('from-the-future', 1)).rejects.toThrow(
      `model-versions record 'from-the-future/0000000001' has schema version 99, newer than this fleet server knows (${MODEL_VERSION_MIGRATIONS.version})`,
    );
    await expect(models.listVersions('from-the-future')).rejects.toBeInstanceOf(SchemaVersionError);
    await raw('model-versions').del(versionKey('from-the-future', 1));
  });

  it('training-runs v1 from before the retrain loop: no trigger, no recent data, and recover writes v2', async () => {
    // 5313613^: TrainingRunRecord without trigger, recentSince or result.recent.
    await raw('training-runs').put('run-old-done', RUN_5313613_PARENT('run-old-done', 'succeeded'));
    await raw('training-runs').put('run-old-queued', RUN_5313613_PARENT('run-old-queued', 'queued'));
    const done = await runs.get('run-old-done');
    expect([done.trigger, done.recentSince, done.result?.recent]).toEqual([null, null, null]);
    expect(done).not.toHaveProperty('schemaVersion');
    const listed = (await runs.list('machines')).map((r) => [r.id, r.trigger, r.recentSince]);
    expect(listed.sort()).toEqual([
      ['run-old-done', null, null],
      ['run-old-queued', null, null],
    ]);
    expect(await runs.recover()).toBe(1);
    expect(await raw('training-runs').get('run-old-queued')).toMatchObject({
      schemaVersion: TRAINING_RUN_MIGRATIONS.version,
      status: 'failed',
      trigger: null,
      recentSince: null,
      result: null,
    });
  });

  it('snapshots v1 from 8bb1c08: the whole pool (`since` null)', async () => {
    const { since: _since, ...old } = SNAPSHOT_CURRENT;
    await raw('snapshots').put(old.id, old);
    expect(await snapshots.get(old.id)).toEqual(SNAPSHOT_CURRENT);
    expect(await snapshots.list('machines')).toEqual([SNAPSHOT_CURRENT]);
    expect(SNAPSHOT_MIGRATIONS.version).toBe(2);
  });

  it('each migration step runs once per old record read, and not at all once its owner wrote it back', async () => {
    const first = MODEL_VERSION_MIGRATIONS.steps[0]!;
    let calls = 0;
    const counted = {
      ...MODEL_VERSION_MIGRATIONS,
      steps: [
        (r: Record<string, unknown>) => {
          calls++;
          return first(r);
        },
      ],
    };
    const pushed = await models.push('counted', mlp(4, 8), { actor: 'op' });
    const { variant: _v, ...old } = pushed;
    await raw('counted-versions').put('k', old);
    const versions = migrated(store.db.collection<ModelVersionRecord>('counted-versions'), counted);
    const read = (await versions.get('k'))!;
    expect(calls).toBe(1);
    await versions.put('k', read);
    expect(await versions.get('k')).toEqual(read);
    expect(await versions.values()).toEqual([read]);
    expect(calls).toBe(1);
    // Migrating an already migrated collection would run its steps on records it already migrated.
    expect(() => migrated(versions, counted)).toThrow(/migrated already/);
  });
});

describe('collections with one shape so far (v1)', () => {
  it('stamp what they write and refuse a record from a newer release, named', async () => {
    const store = await openTempStore('fleet-v1-');
    try {
      const devices = new DeviceRegistry(
        store.db.collection('devices'),
        store.db.collection('enrollment-tokens'),
        new Map(),
        { now: () => new Date('2026-11-01T00:00:00.000Z') },
      );
      const raw = (name: string) => store.db.collection<Record<string, unknown>>(name);
      await devices.createEnrollmentToken({ tags: {}, expiresInSeconds: 60 });
      expect((await raw('enrollment-tokens').values()).map((t) => t.schemaVersion)).toEqual([1]);
      await raw('devices').put('dev-future', { id: 'dev-future', schemaVersion: 2 });
      await expect(devices.find('dev-future')).rejects.toThrow(
        "devices record 'dev-future' has schema version 2, newer than this fleet server knows (1)",
      );
    } finally {
      await store.close();
    }
  });
});

describe('rolloutVariantsStep (for ROLLOUT_MIGRATIONS)', () => {
  /** b6a80bf^: a rollout from before variants, continued since: one late joiner skipped for having none. */
  function beforeVariants(): Record<string, unknown> {
    const current = v1Record('ro-old');
    const devices = (current.devices as Record<string, unknown>[]).map(({ variant: _v, ...d }) => d);
    const skipped = {
      ...devices[1]!,
      deviceId: 'dev-late',
      rank: 2,
      state: 'skipped',
      reason: { code: 'no_variant', message: 'clf@1 has no variant profile jetson accepts' },
    };
    return { ...current, devices: [...devices, skipped] };
  }

  it('gives each device of a rollout from before variants the variant it got, `default`; a skipped one none', async () => {
    const migratedRecord = rolloutVariantsStep(beforeVariants());
    expect(
      (migratedRecord.devices as { deviceId: string; variant: unknown }[]).map((d) => [
        d.deviceId,
        d.variant,
      ]),
    ).toEqual([
      ['dev-a', 'default'],
      ['dev-b', 'default'],
      ['dev-late', null],
    ]);
  });

  it('leaves a current record as it is', () => {
    const current = v1Record('ro-now');
    const devices = (current.devices as Record<string, unknown>[]).map((d, i) =>
      i === 0 ? { ...d, variant: 'fp16' } : d,
    );
    const record = { ...current, devices };
    expect(rolloutVariantsStep(record)).toEqual(record);
  });

  it('reads through a collection as the steps after ROLLOUT_MIGRATIONS', async () => {
    const store = await openTempStore('fleet-rollout-variants-');
    try {
      const withVariants: Migrations<RolloutRecord> = {
        ...ROLLOUT_MIGRATIONS,
        version: ROLLOUT_MIGRATIONS.version + 1,
        steps: [...ROLLOUT_MIGRATIONS.steps, rolloutVariantsStep],
      };
      await store.db.collection<Record<string, unknown>>('rollouts').put('ro-old', beforeVariants());
      const read = await migrated(store.db.collection<RolloutRecord>('rollouts'), withVariants).get('ro-old');
      expect(read!.devices.map((d) => [d.deviceId, d.variant, d.issuedAt])).toEqual([
        ['dev-a', 'default', '2026-11-01T00:01:00.000Z'],
        ['dev-b', 'default', null],
        ['dev-late', null, null],
      ]);
    } finally {
      await store.close();
    }
  });
});

/** A trained version's lineage as 5313613^ stored it (no `recent`, no `trigger`). */
const LINEAGE_5313613_PARENT = {
  run: 'run-1',
  task: 'machines',
  snapshot: 'snap-0123456789abcdef',
  config: { epochs: 5, seed: 7 },
  seed: 7,
  codeVersion: '0.1.0',
  backend: 'cpu',
  metrics: { accuracy: 0.9 },
  champion: null,
  trainRows: 80,
  holdoutRows: 20,
  parityMaxAbsDiff: 1e-7,
  startedAt: '2026-10-01T00:00:00.000Z',
  durationMs: 1200,
};

/** A training run as 5313613^ stored it. */
function RUN_5313613_PARENT(id: string, status: 'succeeded' | 'queued'): Record<string, unknown> {
  return {
    id,
    task: 'machines',
    model: 'machines',
    snapshot: 'snap-0123456789abcdef',
    config: { epochs: 5, seed: 7 },
    status,
    createdAt: '2026-10-01T00:00:00.000Z',
    createdBy: 'op',
    startedAt: status === 'queued' ? null : '2026-10-01T00:00:01.000Z',
    finishedAt: status === 'queued' ? null : '2026-10-01T00:00:02.000Z',
    backend: status === 'queued' ? null : 'cpu',
    progress: null,
    history: [],
    result:
      status === 'queued'
        ? null
        : {
            version: 1,
            metrics: { accuracy: 0.9, rows: 20 },
            champion: null,
            bestEpoch: 4,
            stoppedEarly: false,
            trainRows: 80,
            holdoutRows: 20,
            parityMaxAbsDiff: 1e-7,
            durationMs: 1000,
          },
    error: null,
  };
}

/** A snapshot in the current shape; 8bb1c08 stored the same without `since`. */
const SNAPSHOT_CURRENT = {
  id: 'snap-0123456789abcdef',
  task: 'machines',
  sha256: '0123456789abcdef'.repeat(4),
  bytes: 1000,
  count: 10,
  labeled: 10,
  bySource: { 'import:machines.csv': 10 },
  byLabel: { ok: 8, fault: 2 },
  timeRange: { from: '2026-10-01T00:00:00.000Z', to: '2026-10-02T00:00:00.000Z' },
  since: null,
  createdAt: '2026-10-03T00:00:00.000Z',
  createdBy: 'op',
};
