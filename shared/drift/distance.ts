/**
 * Distances between a reference distribution and a current one, both over the same bins (the reference bin
 * edges shipped in the signed manifest). Pure; inputs are per-bin counts or proportions. Checked against SciPy
 * and NumPy in test/unit/shared/drift (fixtures and the script that made them in test/fixtures/drift).
 */

/** Counts or weights → proportions summing to 1 (all zeros stays all zeros). */
export function proportions(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return total > 0 ? counts.map((c) => c / total) : counts.map(() => 0);
}

/** Proportions used by PSI: empty bins become `epsilon`, so a bin seen on one side only counts, finitely. */
export const PSI_EPSILON = 1e-4;

/**
 * Population Stability Index: Σ (q − p) · ln(q / p) over bins, p the reference share, q the current share,
 * with empty bins replaced by PSI_EPSILON (Evidently's smoothing). Rule of thumb: < 0.1 stable, > 0.25 shifted.
 */
export function psi(reference: readonly number[], current: readonly number[], epsilon = PSI_EPSILON): number {
  sameLength(reference, current);
  const p = proportions(reference).map((x) => (x === 0 ? epsilon : x));
  const q = proportions(current).map((x) => (x === 0 ? epsilon : x));
  let sum = 0;
  for (let i = 0; i < p.length; i++) sum += (q[i]! - p[i]!) * Math.log(q[i]! / p[i]!);
  return sum;
}

/**
 * Jensen–Shannon distance with base-2 logarithms (in [0, 1]): √(½ KL(p‖m) + ½ KL(q‖m)), m = (p + q)/2;
 * SciPy's `jensenshannon(p, q, base=2)`.
 */
export function jensenShannon(reference: readonly number[], current: readonly number[]): number {
  sameLength(reference, current);
  const p = proportions(reference);
  const q = proportions(current);
  let js = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i]! + q[i]!) / 2;
    if (p[i]! > 0) js += 0.5 * p[i]! * Math.log2(p[i]! / m);
    if (q[i]! > 0) js += 0.5 * q[i]! * Math.log2(q[i]! / m);
  }
  return Math.sqrt(Math.max(0, js));
}

/**
 * Wasserstein-1 (earth mover's) distance between two weighted distributions on the same sorted support
 * `values` (bin midpoints): ∫ |F_ref − F_cur|, as SciPy's `wasserstein_distance(values, values, wRef, wCur)`.
 */
export function wasserstein1(
  values: readonly number[],
  reference: readonly number[],
  current: readonly number[],
): number {
  sameLength(reference, current);
  sameLength(values, reference);
  const p = proportions(reference);
  const q = proportions(current);
  let cdfP = 0;
  let cdfQ = 0;
  let distance = 0;
  for (let i = 0; i + 1 < values.length; i++) {
    cdfP += p[i]!;
    cdfQ += q[i]!;
    distance += Math.abs(cdfP - cdfQ) * (values[i + 1]! - values[i]!);
  }
  return distance;
}

/** Wasserstein-1 in units of the reference standard deviation (Evidently's normalization); 0 std → raw. */
export function normalizedWasserstein(
  values: readonly number[],
  reference: readonly number[],
  current: readonly number[],
  referenceStd: number,
): number {
  const d = wasserstein1(values, reference, current);
  return referenceStd > 0 ? d / referenceStd : d;
}

function sameLength(a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length) throw new Error(`distributions have ${a.length} and ${b.length} bins`);
}
