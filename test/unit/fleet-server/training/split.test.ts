import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { idUnit, isHoldout, splitByIds } from '../../../../fleet-server/training/split.js';

const ids = Array.from({ length: 5000 }, (_, i) => `device-${i}`);

describe('splitByIds', () => {
  it('is the sha256 rule: first 4 bytes big-endian / 2^32', () => {
    const digest = createHash('sha256').update('device-42').digest();
    const expected =
      (digest[0]! * 2 ** 24 + digest[1]! * 2 ** 16 + digest[2]! * 2 ** 8 + digest[3]!) / 2 ** 32;
    expect(idUnit('device-42')).toBe(expected);
    // pinned so a change of rule (hash, byte order, encoding) cannot pass unnoticed
    expect(idUnit('abc')).toBe(0xba7816bf / 2 ** 32);
  });

  it('is deterministic and independent of row order', () => {
    const a = splitByIds(ids, 0.2);
    const b = splitByIds(ids, 0.2);
    expect(a).toEqual(b);
    const reversed = [...ids].reverse();
    const r = splitByIds(reversed, 0.2);
    const heldOut = new Set(Array.from(a.holdout, (i) => ids[i]));
    expect(new Set(Array.from(r.holdout, (i) => reversed[i]))).toEqual(heldOut);
  });

  it('partitions all rows and holds out about the asked fraction', () => {
    const s = splitByIds(ids, 0.2);
    expect(s.train.length + s.holdout.length).toBe(ids.length);
    expect(new Set([...s.train, ...s.holdout]).size).toBe(ids.length);
    expect(s.holdout.length / ids.length).toBeGreaterThan(0.17);
    expect(s.holdout.length / ids.length).toBeLessThan(0.23);
  });

  it('grows the holdout monotonically with the fraction (records never move back)', () => {
    for (const id of ids.slice(0, 500)) {
      if (isHoldout(id, 0.1)) expect(isHoldout(id, 0.3)).toBe(true);
    }
  });
});
