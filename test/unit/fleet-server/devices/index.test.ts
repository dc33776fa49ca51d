/**
 * The registry's in-memory device index against the records it stands for, over a real LevelDB: after any
 * sequence of writes (enrollments, imports, status reports online and offline with their models, telemetry,
 * touches, marking everyone offline) the filtered list, the pages and the overview's counts agree with a
 * full scan of the collection judged by a matcher written here, and a registry opened anew on the same
 * store rebuilds the same index. Also: writes that race the first scan are not lost from it.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../../../fleet-server/devices/profiles.js';
import {
  type DeviceFilter,
  type DeviceRecord,
  DeviceRegistry,
  type EnrollmentTokenRecord,
} from '../../../../fleet-server/devices/registry.js';
import { Db } from '../../../../fleet-server/store/db.js';
import { generateSigningKey, publicInfoOf } from '../../../../shared/crypto/signing.js';
import type { FirmwareProfile } from '../../../../shared/firmware-profile.js';
import type { ActiveModel, StatusMessage } from '../../../../shared/protocol/messages.js';
import { REPO_PROFILES } from '../../../support/fleet.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';
import { quietTelemetry as telemetry } from './messages.js';

const context = {
  trustedKeys: [publicInfoOf(generateSigningKey().privateKeyPem)],
  serverUrl: 'http://fleet.test',
  mqttUrl: 'mqtt://fleet.test:1883',
};

const SITES = ['a', 'b', 'c'];
const PROFILES = ['x86_64-cpu', 'raspberry-pi-5', 'jetson-orin'];
/** Ids the imports draw from: some sort before the enrolled ones (`dev-<hex>`), some after. */
const IMPORT_IDS = ['dev-0001', 'dev-0002', 'dev-0003', 'dev-zz01', 'dev-zz02', 'dev-a1b2'];

/** Filters the checks always ask, beside the generated ones: each condition alone and some together. */
const FILTERS: DeviceFilter[] = [
  {},
  { status: 'online' },
  { status: 'offline' },
  { tags: { site: 'a' } },
  { tags: { site: 'b', line: '1' } },
  { profile: 'raspberry-pi-5' },
  { model: { name: 'clf' } },
  { model: { name: 'clf', version: 2 } },
  { model: { name: 'det', version: 1 } },
  { search: 'a' },
  { search: 'pi' },
  { search: 'dev-0' },
  { status: 'online', tags: { site: 'c' } },
  { status: 'offline', model: { name: 'clf' }, profile: 'x86_64-cpu' },
];

/** Repeats too: a device may list one version twice (two execution providers); it counts once. */
const modelsArb = fc.array(
  fc.record({ name: fc.constantFrom('clf', 'det'), version: fc.integer({ min: 1, max: 3 }) }),
  { maxLength: 3 },
);

const filterArb: fc.Arbitrary<DeviceFilter> = fc.record(
  {
    tags: fc.dictionary(fc.constantFrom('site', 'line'), fc.constantFrom('a', 'b', 'c', '1', '2'), {
      maxKeys: 2,
    }),
    status: fc.constantFrom('online' as const, 'offline' as const),
    search: fc.constantFrom('a', 'b', '1', 'dev-', 'cpu', 'zz', '0'),
    profile: fc.constantFrom(...PROFILES),
    model: fc.record(
      { name: fc.constantFrom('clf', 'det'), version: fc.integer({ min: 1, max: 3 }) },
      {
        requiredKeys: ['name'],
      },
    ),
  },
  { requiredKeys: [] },
);

type Op =
  | { op: 'enroll'; site: string; line: string; profile: string }
  | {
      op: 'import';
      devices: { id: string; site: string; profile: string; seen: 0 | 1 | 2; models: Model[] }[];
    }
  | { op: 'status'; target: number; online: boolean; models: Model[] }
  | { op: 'telemetry'; target: number }
  | { op: 'touch'; target: number }
  | { op: 'markAllOffline' };
type Model = { name: string; version: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  // Enrollment hashes a secret with scrypt: rarer than the rest, so a run stays quick.
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('enroll' as const),
      site: fc.constantFrom(...SITES),
      line: fc.constantFrom('1', '2'),
      profile: fc.constantFrom(...PROFILES),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('import' as const),
      devices: fc.array(
        fc.record({
          id: fc.constantFrom(...IMPORT_IDS),
          site: fc.constantFrom(...SITES),
          profile: fc.constantFrom(...PROFILES),
          // never seen, offline, online
          seen: fc.constantFrom(0 as const, 1 as const, 2 as const),
          models: modelsArb,
        }),
        { minLength: 1, maxLength: 4 },
      ),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('status' as const),
      target: fc.nat(),
      online: fc.boolean(),
      models: modelsArb,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('telemetry' as const), target: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('touch' as const), target: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'markAllOffline' as const }) },
);

function statusMessage(online: boolean, models: Model[]): StatusMessage {
  const active: ActiveModel[] = models.map((m) => ({ ...m, executionProvider: 'cpu' }));
  return {
    v: 1,
    type: 'status',
    id: crypto.randomUUID(),
    ts: 0,
    online,
    agentVersion: '1.0.0',
    models: active,
  };
}

function record(d: Extract<Op, { op: 'import' }>['devices'][number]): DeviceRecord {
  return {
    id: d.id,
    tags: { site: d.site, line: d.id.endsWith('1') ? '1' : '2' },
    profile: d.profile,
    facts: {} as DeviceRecord['facts'],
    enrolledAt: '2026-11-01T00:00:00.000Z',
    secret: {} as DeviceRecord['secret'],
    online: d.seen === 2,
    lastSeen: d.seen === 0 ? null : '2026-11-01T00:00:00.000Z',
    agentVersion: null,
    models: d.seen === 0 ? [] : d.models.map((m) => ({ ...m, executionProvider: 'cpu' })),
    telemetry: null,
  };
}

/** The filter's meaning, written out again here rather than taken from the registry. */
function oracle(filter: DeviceFilter, d: DeviceRecord): boolean {
  const status = d.online ? 'online' : d.lastSeen !== null ? 'offline' : 'never_seen';
  if (filter.status !== undefined && status !== filter.status) return false;
  for (const [k, v] of Object.entries(filter.tags ?? {})) if (d.tags[k] !== v) return false;
  if (filter.profile !== undefined && d.profile !== filter.profile) return false;
  const { model, search } = filter;
  if (
    model &&
    !d.models.some(
      (m) => m.name === model.name && (model.version === undefined || m.version === model.version),
    )
  )
    return false;
  if (search !== undefined) {
    const texts = [d.id, d.profile, ...Object.values(d.tags)];
    if (!texts.some((t) => t.includes(search))) return false;
  }
  return true;
}

/** The overview's counts from every record. */
function oracleSummary(all: DeviceRecord[]) {
  const status = (d: DeviceRecord) => (d.online ? 'online' : d.lastSeen !== null ? 'offline' : 'never_seen');
  const profiles = new Map<string, number>();
  const versions = new Map<string, number>();
  for (const d of all) {
    profiles.set(d.profile, (profiles.get(d.profile) ?? 0) + 1);
    for (const key of new Set(d.models.map((m) => `${m.name}@${m.version}`)))
      versions.set(key, (versions.get(key) ?? 0) + 1);
  }
  return {
    total: all.length,
    online: all.filter((d) => status(d) === 'online').length,
    offline: all.filter((d) => status(d) === 'offline').length,
    neverSeen: all.filter((d) => status(d) === 'never_seen').length,
    profiles: Object.fromEntries([...profiles].sort()),
    versions: Object.fromEntries([...versions].sort()),
  };
}

async function summaryOf(registry: DeviceRegistry) {
  const s = await registry.summary();
  return {
    total: s.total,
    online: s.online,
    offline: s.offline,
    neverSeen: s.neverSeen,
    profiles: Object.fromEntries([...s.profiles].sort()),
    versions: Object.fromEntries(s.versions.map((v) => [`${v.model}@${v.version}`, v.devices]).sort()),
  };
}

/** Every page of the filter, `limit` at a time: full pages end at `next`, the last one says null. */
async function walk(registry: DeviceRegistry, filter: DeviceFilter, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let after: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const page = await registry.page({ ...filter, limit, after });
    ids.push(...page.devices.map((d) => d.id));
    if (page.next === null) {
      expect(page.devices.length).toBeLessThan(limit);
      return ids;
    }
    expect(page.devices).toHaveLength(limit);
    expect(page.next).toBe(page.devices.at(-1)!.id);
    after = page.next;
  }
  throw new Error('pages never ended');
}

/** Lists, pages and counts of the registry agree with a full scan of its collection. */
async function expectInSync(
  registry: DeviceRegistry,
  stored: DeviceRecord[],
  filters: DeviceFilter[],
  limit: number,
): Promise<void> {
  expect(await summaryOf(registry)).toEqual(oracleSummary(stored));
  for (const filter of filters) {
    const expected = stored.filter((d) => oracle(filter, d)).map((d) => d.id);
    expect(
      (await registry.list(filter)).map((d) => d.id),
      JSON.stringify(filter),
    ).toEqual(expected);
    expect(await walk(registry, filter, limit), JSON.stringify(filter)).toEqual(expected);
  }
}

describe('DeviceRegistry index', () => {
  let store: TempStore;
  let profiles: Map<string, FirmwareProfile>;
  let clock: ReturnType<typeof manualClock>;

  beforeEach(async () => {
    store = await openTempStore();
    profiles = await loadProfiles(REPO_PROFILES);
    clock = manualClock();
  });
  afterEach(() => store.close());

  /** A registry over collections of its own: each property run starts from an empty fleet. */
  const registryOn = (db: Db, name: string) =>
    new DeviceRegistry(
      db.collection<DeviceRecord>(`devices-${name}`),
      db.collection<EnrollmentTokenRecord>(`tokens-${name}`),
      profiles,
      clock,
    );

  async function apply(registry: DeviceRegistry, op: Op, ids: string[]): Promise<void> {
    clock.advance(1000);
    const target = (n: number) => ids[n % ids.length] ?? 'dev-unknown';
    switch (op.op) {
      case 'enroll': {
        const { token } = await registry.createEnrollmentToken({
          tags: { site: op.site, line: op.line },
          profile: op.profile,
          expiresInSeconds: 3600,
        });
        ids.push((await registry.enroll({ token, facts: {} }, context)).deviceId);
        return;
      }
      case 'import':
        await registry.importRecords(op.devices.map(record));
        for (const d of op.devices) if (!ids.includes(d.id)) ids.push(d.id);
        return;
      case 'status':
        await registry.applyStatus(target(op.target), statusMessage(op.online, op.models));
        return;
      case 'telemetry':
        await registry.applyTelemetry(target(op.target), telemetry());
        return;
      case 'touch':
        await registry.touch(target(op.target));
        return;
      case 'markAllOffline':
        await registry.markAllOffline();
        return;
    }
  }

  it('agrees with a full scan after any sequence of writes, and rebuilds the same index when reopened', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 12 }),
        fc.array(filterArb, { maxLength: 4 }),
        fc.integer({ min: 1, max: 4 }),
        async (ops, generated, limit) => {
          const name = String(run++);
          const registry = registryOn(store.db, name);
          const collection = store.db.collection<DeviceRecord>(`devices-${name}`);
          const filters = [...FILTERS, ...generated];
          const ids: string[] = [];
          for (const op of ops) {
            await apply(registry, op, ids);
            await expectInSync(registry, await collection.values(), filters, limit);
          }
          // A new instance on the same collection: its index comes from one scan, and must be the same.
          const reopened = registryOn(store.db, name);
          expect(await summaryOf(reopened)).toEqual(await summaryOf(registry));
          await expectInSync(reopened, await collection.values(), filters, limit);
        },
      ),
      { seed: 20261201, numRuns: 40 },
    );
  }, 120_000);

  it('a registry opened on the reopened database rebuilds the same index (enrollments, status, imports)', async () => {
    const path = join(store.dir, 'reopened');
    let db = await Db.open(path);
    try {
      const first = registryOn(db, 'x');
      const ids: string[] = [];
      const ops: Op[] = [
        { op: 'enroll', site: 'a', line: '1', profile: 'raspberry-pi-5' },
        { op: 'enroll', site: 'b', line: '2', profile: 'x86_64-cpu' },
        { op: 'enroll', site: 'c', line: '1', profile: 'jetson-orin' },
        {
          op: 'import',
          devices: [
            {
              id: 'dev-0001',
              site: 'a',
              profile: 'x86_64-cpu',
              seen: 2,
              models: [{ name: 'clf', version: 2 }],
            },
            {
              id: 'dev-zz01',
              site: 'b',
              profile: 'jetson-orin',
              seen: 1,
              models: [{ name: 'det', version: 1 }],
            },
            { id: 'dev-0002', site: 'c', profile: 'raspberry-pi-5', seen: 0, models: [] },
          ],
        },
        { op: 'status', target: 0, online: true, models: [{ name: 'clf', version: 1 }] },
        { op: 'status', target: 1, online: true, models: [{ name: 'clf', version: 2 }] },
        { op: 'status', target: 1, online: false, models: [] },
        { op: 'telemetry', target: 5 },
      ];
      for (const op of ops) await apply(first, op, ids);
      const before = await summaryOf(first);
      expect(before).toMatchObject({ total: 6, online: 2, offline: 3, neverSeen: 1 });
      const lists = await Promise.all(FILTERS.map(async (f) => (await first.list(f)).map((d) => d.id)));
      await db.close();

      db = await Db.open(path);
      const second = registryOn(db, 'x');
      await second.load();
      expect(await summaryOf(second)).toEqual(before);
      for (const [i, filter] of FILTERS.entries()) {
        expect(
          (await second.list(filter)).map((d) => d.id),
          JSON.stringify(filter),
        ).toEqual(lists[i]);
        expect(await walk(second, filter, 2)).toEqual(lists[i]);
      }
      // And a start marks everyone offline through the index: no one is left online, no one else moves.
      await second.markAllOffline();
      expect(await summaryOf(second)).toEqual({ ...before, online: 0, offline: before.offline + 2 });
      await expectInSync(second, await db.collection<DeviceRecord>('devices-x').values(), FILTERS, 2);
    } finally {
      await db.close();
    }
  });

  it('loses no write that races the first scan', async () => {
    const collection = store.db.collection<DeviceRecord>('devices-race');
    const seeded = Array.from({ length: 300 }, (_, i) =>
      record({
        id: `dev-${String(i).padStart(4, '0')}`,
        site: SITES[i % 3]!,
        profile: 'x86_64-cpu',
        seen: 0,
        models: [],
      }),
    );
    await collection.putMany(seeded.map((d) => [d.id, d]));
    const registry = registryOn(store.db, 'race');
    // The first use is these writes and reads at once: the writes wait for the scan, then update the index.
    await Promise.all([
      ...seeded
        .filter((_, i) => i % 7 === 0)
        .map((d) => registry.applyStatus(d.id, statusMessage(true, [{ name: 'clf', version: 1 }]))),
      registry.summary(),
      registry.page({ limit: 10, status: 'online' }),
    ]);
    expect(await summaryOf(registry)).toMatchObject({ total: 300, online: 43, neverSeen: 257 });
    await expectInSync(registry, await collection.values(), FILTERS, 10);
  });
});
