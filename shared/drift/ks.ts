/**
 * Two-sample Kolmogorov–Smirnov test on binned data (reference proportions and current counts over the same
 * bins): the statistic is the largest gap between the two empirical CDFs at the bin edges — exactly SciPy's
 * `ks_2samp` statistic on the values replaced by their bins. The p-value is sample-size aware: the
 * Kolmogorov limiting distribution at (√nₑ + 0.12 + 0.11/√nₑ)·D with nₑ = n·m/(n + m) (Stephens' small-sample
 * correction), so the same D means less with fewer samples. Checked against SciPy's `kstwobign` by fixture.
 */
import { proportions } from './distance.js';

export interface KsResult {
  statistic: number;
  pValue: number;
  /** nₑ = n·m/(n + m). */
  effectiveN: number;
}

export function ksTest(
  reference: readonly number[],
  current: readonly number[],
  referenceN: number,
  currentN: number,
): KsResult {
  if (reference.length !== current.length)
    throw new Error(`distributions have ${reference.length} and ${current.length} bins`);
  const p = proportions(reference);
  const q = proportions(current);
  let cdfP = 0;
  let cdfQ = 0;
  let statistic = 0;
  for (let i = 0; i < p.length; i++) {
    cdfP += p[i]!;
    cdfQ += q[i]!;
    statistic = Math.max(statistic, Math.abs(cdfP - cdfQ));
  }
  const effectiveN = (referenceN * currentN) / (referenceN + currentN);
  const sqrtN = Math.sqrt(effectiveN);
  return { statistic, pValue: kolmogorovSf((sqrtN + 0.12 + 0.11 / sqrtN) * statistic), effectiveN };
}

/**
 * Survival function of the Kolmogorov distribution, P(K > x) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²x²}; for small x,
 * where that series converges slowly, 1 − (√(2π)/x) Σ_{k≥1} e^{−(2k−1)²π²/(8x²)}.
 */
export function kolmogorovSf(x: number): number {
  if (!(x > 0)) return 1;
  if (x < 1) {
    let sum = 0;
    for (let k = 1; k <= 50; k++) {
      const term = Math.exp((-((2 * k - 1) ** 2) * Math.PI ** 2) / (8 * x * x));
      sum += term;
      if (term < 1e-17) break;
    }
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / x) * sum));
  }
  let sum = 0;
  for (let k = 1; k <= 100; k++) {
    const term = Math.exp(-2 * k * k * x * x);
    sum += (k % 2 === 1 ? 1 : -1) * term;
    if (term < 1e-17) break;
  }
  return Math.min(1, Math.max(0, 2 * sum));
}
