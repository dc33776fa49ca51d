/**
 * Stored records migrated on read: a rollout written as the previous release wrote it (no schema version,
 * devices without `issuedAt`) reads back in the current shape through every read path; writes carry the
 * current version; a record from a newer release is refused by name. Real LevelDB in a temp dir.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newRollout,
  ROLLOUT_MIGRATIONS,
  type RolloutRecord,
} from '../../../../fleet-server/rollouts/record.js';
import { presetSpec } from '../../../../fleet-server/rollouts/spec.js';
import type { Collection } from '../../../../fleet-server/store/db.js';
import { type Migrations, migrated, SchemaVersionError } from '../../../../fleet-server/store/migrations.js';
import { openTempStore, type TempStore } from '../temp-store.js';

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
