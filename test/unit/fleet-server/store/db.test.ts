/** LevelDB collections (isolated namespaces, ordered prefix scans) and the per-key mutex. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyedMutex } from '../../../../fleet-server/store/lock.js';
import { openTempStore, type TempStore } from '../temp-store.js';

describe('Db collections', () => {
  let store: TempStore;
  beforeAll(async () => {
    store = await openTempStore('fleet-db-');
  });
  afterAll(() => store?.close());

  it('keeps collections apart and round-trips JSON values', async () => {
    const a = store.db.collection<{ n: number; tags: string[] }>('a');
    const b = store.db.collection<{ n: number }>('b');
    await a.put('k', { n: 1, tags: ['x'] });
    await b.put('k', { n: 2 });
    expect(await a.get('k')).toEqual({ n: 1, tags: ['x'] });
    expect(await b.get('k')).toEqual({ n: 2 });
    expect(await a.get('missing')).toBeUndefined();
    await a.del('k');
    expect(await a.get('k')).toBeUndefined();
    expect(await b.values()).toEqual([{ n: 2 }]);
  });

  it('tells which keys are present without reading values, and keeps byte values as they are', async () => {
    const bytes = store.db.bytesCollection('bytes');
    const value = Buffer.from([0, 1, 0x7b, 255]);
    await bytes.put('x', value);
    expect(await bytes.get('x')).toEqual(value);
    expect(await bytes.hasMany(['x', 'y', 'x'])).toEqual([true, false, true]);
    // Collections stay apart whatever their value encoding.
    expect(await store.db.collection('a').hasMany(['x'])).toEqual([false]);
  });

  it('scans a prefix in key order and nothing beyond it', async () => {
    const c = store.db.collection<string>('c');
    for (const key of ['m/0000000002', 'm/0000000010', 'm/0000000001', 'm2/0000000001', 'l/0000000001']) {
      await c.put(key, key);
    }
    expect(await c.values('m/')).toEqual(['m/0000000001', 'm/0000000002', 'm/0000000010']);
    expect((await c.entries('m2/')).map(([k]) => k)).toEqual(['m2/0000000001']);
    expect(await c.values()).toHaveLength(5);
  });
});

describe('KeyedMutex', () => {
  it('runs work for one key in arrival order, even after a failure, and other keys alongside', async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = mutex.run('k', async () => {
      await gate;
      log.push('k1');
      throw new Error('k1 failed');
    });
    const second = mutex.run('k', async () => {
      log.push('k2');
      return 2;
    });
    const other = mutex.run('other', async () => {
      log.push('other');
    });
    await other;
    expect(log).toEqual(['other']);
    release();
    await expect(first).rejects.toThrow('k1 failed');
    expect(await second).toBe(2);
    expect(log).toEqual(['other', 'k1', 'k2']);
  });
});
