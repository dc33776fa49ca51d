/**
 * Two-sample chi-square test of homogeneity on category counts (prediction drift for classifiers: is the
 * share of rows per predicted class the same in the current window as in the reference?). Pure.
 *
 * The 2×k table is [reference counts; current counts], the reference counts being the reference proportions
 * times the reference row count. Statistic, degrees of freedom and p-value are those of SciPy's
 * `chi2_contingency(table, correction=False)` (checked by fixture), with one difference: categories empty in
 * both rows are dropped first (SciPy refuses a table with a zero expected count; a class neither side ever
 * predicted carries no evidence either way, so dropping it is the natural reading). With fewer than two
 * categories left, or an empty row, there is nothing to compare: statistic 0, p-value 1.
 *
 * The p-value is the chi-square survival function, Q(dof/2, x/2), through a regularized upper incomplete
 * gamma function implemented here (series below a + 1, Lentz's continued fraction above; ~1e-10 or better).
 */
import { proportions } from './distance.js';

export interface Chi2Result {
  statistic: number;
  /** (non-empty categories − 1); 0 when there was nothing to test. */
  dof: number;
  pValue: number;
}

/**
 * Chi-square test of homogeneity between `reference` (proportions or counts; normalized, then scaled to
 * `referenceRows`) and `current` counts over the same categories.
 */
export function chi2Test(
  reference: readonly number[],
  current: readonly number[],
  referenceRows: number,
): Chi2Result {
  if (reference.length !== current.length)
    throw new Error(`distributions have ${reference.length} and ${current.length} categories`);
  const p = proportions(reference);
  const refCounts: number[] = [];
  const curCounts: number[] = [];
  for (let i = 0; i < p.length; i++) {
    const r = p[i]! * referenceRows;
    const c = current[i]!;
    if (r > 0 || c > 0) {
      refCounts.push(r);
      curCounts.push(c);
    }
  }
  const refTotal = refCounts.reduce((a, b) => a + b, 0);
  const curTotal = curCounts.reduce((a, b) => a + b, 0);
  const k = refCounts.length;
  if (k < 2 || !(refTotal > 0) || !(curTotal > 0)) return { statistic: 0, dof: 0, pValue: 1 };
  const total = refTotal + curTotal;
  let statistic = 0;
  for (let i = 0; i < k; i++) {
    const column = refCounts[i]! + curCounts[i]!;
    const expectedRef = (refTotal * column) / total;
    const expectedCur = (curTotal * column) / total;
    statistic += (refCounts[i]! - expectedRef) ** 2 / expectedRef;
    statistic += (curCounts[i]! - expectedCur) ** 2 / expectedCur;
  }
  const dof = k - 1;
  return { statistic, dof, pValue: chi2Sf(statistic, dof) };
}

/** P(X > x) for X ~ χ²(dof). */
export function chi2Sf(x: number, dof: number): number {
  if (!(x > 0)) return 1;
  return regularizedGammaQ(dof / 2, x / 2);
}

/** Regularized lower incomplete gamma P(a, x) = γ(a, x)/Γ(a), a > 0, x ≥ 0. */
export function regularizedGammaP(a: number, x: number): number {
  checkGammaArgs(a, x);
  if (x === 0) return 0;
  return x < a + 1 ? gammaSeries(a, x) : 1 - gammaContinuedFraction(a, x);
}

/** Regularized upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a) = 1 − P(a, x), a > 0, x ≥ 0. */
export function regularizedGammaQ(a: number, x: number): number {
  checkGammaArgs(a, x);
  if (x === 0) return 1;
  return x < a + 1 ? 1 - gammaSeries(a, x) : gammaContinuedFraction(a, x);
}

/** ln Γ(x) for x > 0: Lanczos' approximation (g = 607/128, 15 terms; relative error ~1e-15). */
export function lnGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`lnGamma needs x > 0, got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x); // reflection
  const z = x - 1;
  let sum = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i]! / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

const LANCZOS_G = 607 / 128;
// Godfrey's coefficients for g = 607/128 (Apache Commons Math's), rounded to doubles.
const LANCZOS = [
  0.9999999999999971, 57.15623566586292, -59.59796035547549, 14.136097974741746, -0.4919138160976202,
  3.399464998481189e-5, 4.652362892704858e-5, -9.837447530487956e-5, 1.580887032249125e-4,
  -2.1026444172410488e-4, 2.1743961811521265e-4, -1.643181065367639e-4, 8.441822398385275e-5,
  -2.6190838401581408e-5, 3.6899182659531625e-6,
];

/** Enough for a up to ~1e8: the series and the fraction both need O(√a) terms near x ≈ a. */
const MAX_ITERATIONS = 100_000;
const EPSILON = 1e-16;
const TINY = 1e-300;

/** P(a, x) = e^{−x} x^a / Γ(a+1) · Σ_{n≥0} x^n / ((a+1)…(a+n)); converges fast for x < a + 1. */
function gammaSeries(a: number, x: number): number {
  let term = 1 / a;
  let sum = term;
  for (let n = 1; n < MAX_ITERATIONS; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPSILON) break;
  }
  return Math.min(1, sum * Math.exp(-x + a * Math.log(x) - lnGamma(a)));
}

/** Q(a, x) by the continued fraction e^{−x} x^a / Γ(a) · 1/(x+1−a− 1·(1−a)/(x+3−a− …)), modified Lentz. */
function gammaContinuedFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPSILON) break;
  }
  return Math.max(0, Math.exp(-x + a * Math.log(x) - lnGamma(a)) * h);
}

function checkGammaArgs(a: number, x: number): void {
  if (!(a > 0) || !(x >= 0))
    throw new RangeError(`incomplete gamma needs a > 0 and x ≥ 0, got a=${a}, x=${x}`);
}
