/**
 * The chi-square test of homogeneity against SciPy's `chi2_contingency(table, correction=False)` and the
 * regularized incomplete gamma against `scipy.special.gammainc/gammaincc` (fixtures written by
 * test/fixtures/drift/make_fixtures.py), plus closed forms the gamma function must reproduce.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  chi2Sf,
  chi2Test,
  lnGamma,
  regularizedGammaP,
  regularizedGammaQ,
} from '../../../../shared/drift/chi2.js';

const fixtures = JSON.parse(
  readFileSync(new URL('../../../fixtures/drift/chi2.json', import.meta.url), 'utf8'),
) as {
  chi2: {
    name: string;
    referenceProportions: number[];
    referenceRows: number;
    current: number[];
    statistic: number;
    dof: number;
    pValue: number;
  }[];
  gamma: { a: number; x: number; p: number; q: number }[];
};

/** Within `tolerance` absolutely, and relatively too where the expected value is not tiny. */
const within = (actual: number, expected: number, tolerance: number) => {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(expected)));
  if (Math.abs(expected) > 1e-300)
    expect(Math.abs(actual - expected) / Math.abs(expected)).toBeLessThanOrEqual(tolerance);
};

describe('chi-square test of homogeneity agrees with SciPy to 1e-6', () => {
  it.each(fixtures.chi2.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const result = chi2Test(c.referenceProportions, c.current, c.referenceRows);
    expect(result.dof).toBe(c.dof);
    within(result.statistic, c.statistic, 1e-6);
    if (c.pValue === 0) expect(result.pValue).toBeLessThan(1e-300);
    else within(result.pValue, c.pValue, 1e-6);
  });

  it('takes reference counts as well as proportions', () => {
    const c = fixtures.chi2.find((f) => f.name === 'two categories')!;
    const counts = c.referenceProportions.map((p) => p * c.referenceRows);
    within(chi2Test(counts, c.current, c.referenceRows).pValue, c.pValue, 1e-6);
  });

  it('has nothing to test with an empty row or a single category', () => {
    expect(chi2Test([0.5, 0.5], [0, 0], 100)).toEqual({ statistic: 0, dof: 0, pValue: 1 });
    expect(chi2Test([0.5, 0.5], [3, 4], 0)).toEqual({ statistic: 0, dof: 0, pValue: 1 });
    expect(chi2Test([0, 1, 0], [0, 9, 0], 100)).toEqual({ statistic: 0, dof: 0, pValue: 1 });
  });

  it('refuses distributions over different categories', () => {
    expect(() => chi2Test([0.5, 0.5], [1, 2, 3], 10)).toThrow(/2 and 3 categories/);
  });
});

describe('regularized incomplete gamma', () => {
  it('agrees with scipy.special.gammainc / gammaincc to 1e-10 (relative)', () => {
    for (const { a, x, p, q } of fixtures.gamma) {
      within(regularizedGammaP(a, x), p, 1e-10);
      within(regularizedGammaQ(a, x), q, 1e-10);
    }
  });

  it('reproduces closed forms: Q(1, x) = e^−x, Q(n, x) = e^−x Σ_{k<n} x^k/k!, Q(½, 1) = erfc(1)', () => {
    for (const x of [0.01, 0.5, 1, 2, 7, 30]) within(regularizedGammaQ(1, x), Math.exp(-x), 1e-12);
    for (const n of [2, 3, 5, 8]) {
      for (const x of [0.3, 2, 6, 15]) {
        let sum = 0;
        let term = 1;
        for (let k = 0; k < n; k++) {
          sum += term;
          term *= x / (k + 1);
        }
        within(regularizedGammaQ(n, x), Math.exp(-x) * sum, 1e-12);
      }
    }
    within(regularizedGammaQ(0.5, 1), 0.15729920705028513, 1e-12); // erfc(1) = 0.157299207050285130658…
    expect(regularizedGammaP(3, 0)).toBe(0);
    expect(regularizedGammaQ(3, 0)).toBe(1);
  });

  it('lnGamma matches factorials and Γ(½) = √π', () => {
    let factorial = 1;
    for (let n = 1; n <= 25; n++) {
      within(lnGamma(n), Math.log(factorial), 1e-13);
      factorial *= n;
    }
    within(lnGamma(0.5), Math.log(Math.sqrt(Math.PI)), 1e-14);
    within(lnGamma(0.1), Math.log(9.513507698668732), 1e-14); // Γ(0.1) = 9.51350769866873183629…
  });

  it('gives the chi-square critical values: P(χ²₁ > 3.8415) = P(χ²₂ > 5.9915) = 0.05', () => {
    within(chi2Sf(3.841458820694124, 1), 0.05, 1e-12);
    within(chi2Sf(-2 * Math.log(0.05), 2), 0.05, 1e-12);
    expect(chi2Sf(0, 3)).toBe(1);
  });

  it('refuses arguments outside its domain', () => {
    expect(() => regularizedGammaQ(0, 1)).toThrow(RangeError);
    expect(() => regularizedGammaP(1, -1)).toThrow(RangeError);
    expect(() => lnGamma(-1)).toThrow(RangeError);
  });
});
