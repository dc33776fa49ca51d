/** Latency histograms: bucketing at the bounds, merging, and quantiles checked against sorted samples. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bucketOf,
  countOf,
  emptyBuckets,
  LATENCY_BOUNDS_MS,
  LATENCY_BUCKETS,
  mergeBuckets,
  quantileOf,
} from '../../../shared/histogram.js';

describe('latency histograms', () => {
  it('puts a value on a bound into that bound’s bucket, and everything above the last into overflow', () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(0.05)).toBe(0);
    expect(bucketOf(0.050001)).toBe(1);
    expect(bucketOf(1)).toBe(LATENCY_BOUNDS_MS.indexOf(1));
    expect(bucketOf(1e9)).toBe(LATENCY_BUCKETS - 1);
  });

  it('quantiles are the upper bound of the bucket holding the ⌈q·n⌉-th smallest value', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 20_000, noNaN: true }), { minLength: 1, maxLength: 300 }),
        fc.constantFrom(0.5, 0.95, 0.99, 1),
        (values, q) => {
          const buckets = emptyBuckets();
          for (const v of values) buckets[bucketOf(v)]!++;
          const sorted = [...values].sort((a, b) => a - b);
          const exact = sorted[Math.ceil(q * values.length) - 1]!;
          const b = bucketOf(exact);
          const expected =
            b < LATENCY_BOUNDS_MS.length ? LATENCY_BOUNDS_MS[b] : 2 * LATENCY_BOUNDS_MS.at(-1)!;
          expect(quantileOf(buckets, q)).toBe(expected);
          expect(quantileOf(buckets, q)).toBeGreaterThanOrEqual(exact);
        },
      ),
    );
  });

  it('merges element-wise, refuses another layout, and an empty histogram has no quantile', () => {
    const a = emptyBuckets();
    a[3] = 2;
    const b = emptyBuckets();
    b[3] = 1;
    b[5] = 4;
    expect(countOf(mergeBuckets(a, b))).toBe(7);
    expect(a[3]).toBe(3);
    expect(() => mergeBuckets(a, [1, 2])).toThrow(/2 buckets, expected/);
    expect(quantileOf(emptyBuckets(), 0.95)).toBeNaN();
  });
});
