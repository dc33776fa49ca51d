/**
 * Bins over a reference's edges, the same on the fleet (computing reference statistics) and on the device
 * (counting live values): bin i is [edges[i], edges[i+1]), the last bin is closed, values outside the edges
 * belong to the first or last bin, and a single edge makes one bin. Pure.
 */

/** The bin a value falls in: the number of interior edges ≤ value. */
export function binIndex(edges: ArrayLike<number>, value: number): number {
  let lo = 1;
  let hi = edges.length - 1; // interior edges are edges[1..length-2]
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return Math.max(0, lo - 1);
}

/** How many bins `edges` make. */
export function binCount(edges: ArrayLike<number>): number {
  return Math.max(1, edges.length - 1);
}

/** Counts of values over fixed edges: fixed memory however many values are added (streaming). */
export class BinnedCounts {
  readonly counts: number[];
  total = 0;

  constructor(readonly edges: readonly number[]) {
    this.counts = new Array<number>(binCount(edges)).fill(0);
  }

  add(value: number): void {
    if (!Number.isFinite(value)) return; // non-finite inputs are refused upstream; never skew a histogram
    this.counts[binIndex(this.edges, value)]!++;
    this.total++;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }
}
