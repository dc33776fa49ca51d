/**
 * The audit log's hash chain over a real LevelDB: appends in one order even when concurrent, verifies when
 * untouched, and names the first bad entry after an edit, a removal (in the middle or at the end) or a swap
 * made directly in the database.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AuditEntry, AuditLog, entryHash } from '../../../../fleet-server/audit/log.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';

describe('AuditLog', () => {
  let store: TempStore;
  let audit: AuditLog;
  const raw = () => store.db.collection<AuditEntry>('audit');

  beforeEach(async () => {
    store = await openTempStore();
    const clock = manualClock();
    audit = new AuditLog(store.db, clock.now);
    // Five appends at once: the chain still has one order.
    await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((t, i) =>
        audit.append({
          actor: 'alice',
          role: 'operator',
          action: 'POST /api/v1/x',
          target: t,
          status: 200 + i,
        }),
      ),
    );
  });
  afterEach(() => store.close());

  it('chains entries: each names the previous hash, and the log verifies untouched', async () => {
    const entries = (await audit.list()).reverse();
    expect(entries.map((e) => [e.seq, e.target])).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
      [4, 'd'],
      [5, 'e'],
    ]);
    expect(entries[0]!.prev).toBe('0'.repeat(64));
    for (let i = 1; i < entries.length; i++) expect(entries[i]!.prev).toBe(entries[i - 1]!.hash);
    const { hash, ...body } = entries[2]!;
    expect(entryHash(body)).toBe(hash);
    expect(await audit.verify()).toEqual({ ok: true, entries: 5, head: entries[4]!.hash });
    expect((await audit.list({ limit: 2 })).map((e) => e.seq)).toEqual([5, 4]);
    expect((await audit.list({ target: 'c' })).map((e) => e.seq)).toEqual([3]);
  });

  it('names an edited entry', async () => {
    const third = (await raw().get('000000000003'))!;
    await raw().put('000000000003', { ...third, actor: 'mallory' });
    expect(await audit.verify()).toMatchObject({
      ok: false,
      firstBad: { seq: 3, key: '000000000003', problem: 'edited' },
    });
  });

  it('names a removed entry in the middle', async () => {
    await raw().del('000000000002');
    expect(await audit.verify()).toMatchObject({
      ok: false,
      firstBad: {
        seq: 2,
        key: '000000000002',
        problem: 'removed',
        detail: 'entry 2 is missing: the log goes from 1 to 3',
      },
    });
  });

  it('names the end when the newest entries are removed', async () => {
    await raw().del('000000000005');
    const result = await audit.verify();
    expect(result).toMatchObject({ ok: false, firstBad: { seq: 5, problem: 'removed' } });
    expect(result.ok ? '' : result.firstBad.detail).toMatch(/ends at entry 4 but its head records entry 5/);
  });

  it('names entries moved out of order', async () => {
    const [second, fourth] = [(await raw().get('000000000002'))!, (await raw().get('000000000004'))!];
    await raw().put('000000000002', fourth);
    await raw().put('000000000004', second);
    expect(await audit.verify()).toMatchObject({ ok: false, firstBad: { seq: 2, problem: 'reordered' } });
  });

  it('names an entry whose hash was recomputed after an edit: the next one no longer links to it', async () => {
    const third = (await raw().get('000000000003'))!;
    const { hash: _old, ...body } = { ...third, actor: 'mallory' };
    await raw().put('000000000003', { ...body, hash: entryHash(body) });
    expect(await audit.verify()).toMatchObject({ ok: false, firstBad: { seq: 4, problem: 'reordered' } });
  });
});
