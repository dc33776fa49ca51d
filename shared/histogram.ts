/**
 * Fixed-bucket latency histograms, the form in which devices report latency so the fleet can merge windows
 * and devices exactly and take quantiles of a cohort (averaging per-device p95s would not be a p95).
 * Bucket i counts values ≤ LATENCY_BOUNDS_MS[i] (and > the previous bound); the last bucket is everything
 * above the last bound. Pure.
 */

/** Upper bounds in ms, roughly ×2 per step: fine where inference lives (0.05–50 ms), coarse beyond. */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 40, 50, 75, 100, 150,
  200, 300, 500, 750, 1000, 2000, 5000, 10000,
];
/** Counts per bucket: one per bound plus the overflow bucket. */
export const LATENCY_BUCKETS = LATENCY_BOUNDS_MS.length + 1;

export function emptyBuckets(): number[] {
  return new Array<number>(LATENCY_BUCKETS).fill(0);
}

/** The bucket a value falls in (binary search over the bounds). */
export function bucketOf(valueMs: number, bounds: readonly number[] = LATENCY_BOUNDS_MS): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (valueMs <= bounds[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Element-wise sum; histograms of another length are refused (a device on another bucket layout). */
export function mergeBuckets(into: number[], add: readonly number[]): number[] {
  if (add.length !== into.length)
    throw new Error(`histogram has ${add.length} buckets, expected ${into.length}`);
  for (let i = 0; i < add.length; i++) into[i]! += add[i]!;
  return into;
}

export function countOf(buckets: readonly number[]): number {
  let n = 0;
  for (const c of buckets) n += c;
  return n;
}

/**
 * The q-quantile (0 < q ≤ 1) as the upper bound of the bucket holding the ⌈q·n⌉-th value: an upper estimate,
 * exact to the bucket. The overflow bucket reports twice the last bound. NaN for an empty histogram.
 */
export function quantileOf(
  buckets: readonly number[],
  q: number,
  bounds: readonly number[] = LATENCY_BOUNDS_MS,
): number {
  const n = countOf(buckets);
  if (n === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank) return i < bounds.length ? bounds[i]! : 2 * bounds[bounds.length - 1]!;
  }
  return 2 * bounds[bounds.length - 1]!;
}
