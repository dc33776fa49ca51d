/**
 * Server-side pagination of devices over a real LevelDB: pages in id order that together hold every device
 * once, filters (tag, status, search) that keep filling a page across read chunks, and the end of the list.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../../../fleet-server/devices/profiles.js';
import { type DeviceRecord, DeviceRegistry } from '../../../../fleet-server/devices/registry.js';
import { REPO_PROFILES } from '../../../support/fleet.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';

const N = 950;

function device(i: number): DeviceRecord {
  const id = `dev-${String(i).padStart(5, '0')}`;
  return {
    id,
    tags: { line: i % 50 === 0 ? 'rare' : 'common', shard: String(i % 7) },
    profile: i % 2 === 0 ? 'x86_64-cpu' : 'arm64-cpu',
    facts: {} as DeviceRecord['facts'],
    enrolledAt: '2026-11-01T00:00:00.000Z',
    secret: {} as DeviceRecord['secret'],
    online: i % 3 === 0,
    lastSeen: i % 3 === 0 ? '2026-11-01T00:00:00.000Z' : null,
    agentVersion: null,
    models: [],
    telemetry: null,
  };
}

describe('DeviceRegistry.page', () => {
  let store: TempStore;
  let registry: DeviceRegistry;

  beforeEach(async () => {
    store = await openTempStore();
    const devices = store.db.collection<DeviceRecord>('devices');
    await devices.putMany(Array.from({ length: N }, (_, i) => [device(i).id, device(i)]));
    registry = new DeviceRegistry(
      devices,
      store.db.collection('enrollment-tokens'),
      await loadProfiles(REPO_PROFILES),
      manualClock(),
    );
  });
  afterEach(() => store.close());

  it('walks every device once, in id order, page by page', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await registry.page({ limit: 100, after });
      pages++;
      seen.push(...page.devices.map((d) => d.id));
      if (page.next === null) break;
      expect(page.devices).toHaveLength(100);
      expect(page.next).toBe(page.devices.at(-1)!.id);
      after = page.next;
    }
    expect(pages).toBe(10);
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => device(i).id));
  });

  it('fills filtered pages across read chunks, and agrees with the unpaged list', async () => {
    // 19 devices carry line=rare, spread over the whole id range (every 50th).
    const first = await registry.page({ limit: 5, tags: { line: 'rare' } });
    expect(first.devices.map((d) => d.id)).toEqual([
      'dev-00000',
      'dev-00050',
      'dev-00100',
      'dev-00150',
      'dev-00200',
    ]);
    const rest = await registry.page({ limit: 100, after: first.next!, tags: { line: 'rare' } });
    expect(rest.next).toBeNull();
    expect([...first.devices, ...rest.devices].map((d) => d.id)).toEqual(
      (await registry.list({ tags: { line: 'rare' } })).map((d) => d.id),
    );
    const online = await registry.page({ limit: 1000, status: 'online' });
    expect(online.devices.map((d) => d.id)).toEqual(
      (await registry.list({ status: 'online' })).map((d) => d.id),
    );
    const search = await registry.page({ limit: 1000, search: '0042' });
    expect(search.devices.map((d) => d.id)).toEqual([
      'dev-00042',
      'dev-00420',
      'dev-00421',
      'dev-00422',
      'dev-00423',
      'dev-00424',
      'dev-00425',
      'dev-00426',
      'dev-00427',
      'dev-00428',
      'dev-00429',
    ]);
  });
});
