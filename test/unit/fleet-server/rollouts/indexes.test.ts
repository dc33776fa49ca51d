/**
 * The rollout book's indexes against the plain computations they replace: a rank set's counts and k-th
 * members, and the due heap's walks, after random sequences of adds, re-keys and removals.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DueHeap } from '../../../../fleet-server/rollouts/due-heap.js';
import { RankSet } from '../../../../fleet-server/rollouts/rank-set.js';

describe('RankSet', () => {
  it('counts members below a bound and finds the k-th member like a sorted array, growing as needed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 300 })), { maxLength: 200 }),
        fc.integer({ min: 0, max: 320 }),
        (ops, bound) => {
          const set = new RankSet(4);
          const model = new Set<number>();
          for (const [add, rank] of ops) {
            if (add) {
              set.add(rank);
              model.add(rank);
            } else {
              set.delete(rank);
              model.delete(rank);
            }
          }
          const sorted = [...model].sort((a, b) => a - b);
          expect(set.size).toBe(sorted.length);
          expect(set.countBelow(bound)).toBe(sorted.filter((r) => r < bound).length);
          expect([...set.below(bound)]).toEqual(sorted.filter((r) => r < bound));
          for (const [k, r] of sorted.entries()) expect(set.kth(k)).toBe(r);
          expect(set.kth(sorted.length)).toBe(-1);
        },
      ),
    );
  });
});

describe('DueHeap', () => {
  it('walks exactly the entries due by a bound, and the first one after it outside a skip set', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom('set', 'delete'),
            fc.integer({ min: 0, max: 40 }),
            fc.integer({ min: 0, max: 100 }),
          ),
          { maxLength: 300 },
        ),
        fc.integer({ min: 0, max: 100 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 10 }),
        (ops, bound, skipped) => {
          const heap = new DueHeap();
          const model = new Map<string, number>();
          for (const [op, n, key] of ops) {
            const id = `d${n}`;
            if (op === 'set') {
              heap.set(id, key);
              model.set(id, key);
            } else {
              heap.delete(id);
              model.delete(id);
            }
          }
          expect(heap.size).toBe(model.size);
          for (const [id, key] of model) expect(heap.get(id)).toBe(key);
          const due = [...model].filter(([, k]) => k <= bound).map(([id]) => id);
          expect(heap.atOrBefore(bound).sort()).toEqual(due.sort());
          const skip = new Set(skipped.map((n) => `d${n}`));
          const later = [...model].filter(([id, k]) => k > bound && !skip.has(id)).map(([, k]) => k);
          expect(heap.firstAfter(bound, skip)).toBe(later.length === 0 ? null : Math.min(...later));
        },
      ),
    );
  });
});
