/**
 * shared/drift's distances and multiple-comparison corrections against an independent implementation:
 * fixtures computed by SciPy/NumPy (test/fixtures/drift/make_fixtures.py, committed with its output),
 * agreeing to 1e-9. Plus the properties the definitions promise.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  jensenShannon,
  normalizedWasserstein,
  psi,
  wasserstein1,
} from '../../../../shared/drift/distance.js';
import { kolmogorovSf, ksTest } from '../../../../shared/drift/ks.js';
import { benjaminiHochberg, bonferroni } from '../../../../shared/drift/multiple.js';

const fixtures = JSON.parse(
  readFileSync(new URL('../../../fixtures/drift/distances.json', import.meta.url), 'utf8'),
) as {
  distances: {
    reference: number[];
    current: number[];
    values: number[];
    referenceStd: number;
    psi: number;
    jensenShannon: number;
    wasserstein: number;
    normalizedWasserstein: number;
  }[];
  pvalues: { p: number[]; bh: number[]; bonferroni: number[] }[];
};

const close = (actual: number, expected: number) =>
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-9);

describe('drift distances agree with SciPy to 1e-9', () => {
  it.each(fixtures.distances.map((c, i) => [i, c] as const))('case %i', (_, c) => {
    close(psi(c.reference, c.current), c.psi);
    close(jensenShannon(c.reference, c.current), c.jensenShannon);
    close(wasserstein1(c.values, c.reference, c.current), c.wasserstein);
    close(normalizedWasserstein(c.values, c.reference, c.current, c.referenceStd), c.normalizedWasserstein);
  });

  it.each(fixtures.pvalues.map((c) => [c.p.length, c] as const))(
    'BH and Bonferroni over %i p-values',
    (_, c) => {
      for (const [i, p] of benjaminiHochberg(c.p).entries()) close(p, c.bh[i]!);
      for (const [i, p] of bonferroni(c.p).entries()) close(p, c.bonferroni[i]!);
    },
  );
});

describe('drift distance properties', () => {
  const counts = (n: number) => fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: n, maxLength: n });
  it('are zero for identical distributions and symmetric where the definition is (JS, W1)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 12 }).chain((n) => fc.tuple(counts(n), counts(n))),
        ([a, b]) => {
          const values = a.map((_, i) => i);
          expect(psi(a, a)).toBe(0);
          expect(jensenShannon(a, a)).toBeCloseTo(0, 12);
          expect(wasserstein1(values, a, a)).toBeCloseTo(0, 12);
          expect(jensenShannon(a, b)).toBeCloseTo(jensenShannon(b, a), 12);
          expect(wasserstein1(values, a, b)).toBeCloseTo(wasserstein1(values, b, a), 12);
          expect(psi(a, b)).toBeGreaterThanOrEqual(0);
          expect(jensenShannon(a, b)).toBeLessThanOrEqual(1);
        },
      ),
    );
  });

  it('refuses distributions over different bins', () => {
    expect(() => psi([1, 2], [1, 2, 3])).toThrow(/2 and 3 bins/);
  });
});

describe('Kolmogorov–Smirnov on binned data agrees with SciPy to 1e-6', () => {
  const ks = fixtures as unknown as {
    ks: { reference: number[]; current: number[]; n: number; m: number; statistic: number; pValue: number }[];
    kolmogorov: { x: number; sf: number }[];
  };
  const within = (actual: number, expected: number) => {
    expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-6);
    if (expected > 1e-12) expect(Math.abs(actual - expected) / expected).toBeLessThanOrEqual(1e-6);
  };

  it.each(ks.ks.map((c, i) => [i, c] as const))('case %i: statistic (ks_2samp) and p-value', (_, c) => {
    const result = ksTest(c.reference, c.current, c.n, c.m);
    within(result.statistic, c.statistic);
    within(result.pValue, c.pValue);
  });

  it('the Kolmogorov survival function matches kstwobign.sf over its range', () => {
    for (const { x, sf } of ks.kolmogorov) within(kolmogorovSf(x), sf);
  });

  it('the same statistic means less with fewer samples', () => {
    const few = ksTest([10, 10], [12, 8], 20, 20);
    const many = ksTest([10, 10], [12, 8], 20_000, 20_000);
    expect(few.statistic).toBe(many.statistic);
    expect(few.pValue).toBeGreaterThan(many.pValue);
  });
});
