/**
 * Multiple-comparison correction across features: testing 30 features at α = 0.05 flags one and a half of
 * them by chance alone. Pure. Benjamini–Hochberg adjusted p-values match SciPy's
 * `false_discovery_control(p, method='bh')` (checked by fixture).
 */

/** Bonferroni: each p-value times the number of tests, capped at 1. */
export function bonferroni(pValues: readonly number[]): number[] {
  const m = pValues.length;
  return pValues.map((p) => Math.min(1, p * m));
}

/** Benjamini–Hochberg adjusted p-values (step-up, monotone), in the input's order. */
export function benjaminiHochberg(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const adjusted = new Array<number>(m);
  let running = 1;
  for (let rank = m; rank >= 1; rank--) {
    const [p, index] = order[rank - 1]!;
    running = Math.min(running, (p * m) / rank);
    adjusted[index] = Math.min(1, running);
  }
  return adjusted;
}
