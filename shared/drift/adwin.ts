/**
 * ADWIN2 (Bifet & Gavaldà, "Learning from Time-Changing Data with Adaptive Windowing", SDM 2007): an adaptive
 * window over a stream of values (per-request losses) that drops its oldest part whenever two sub-windows
 * have means too far apart to be one distribution. A shrink is a detected change; the window then holds only
 * the recent concept, so `mean` is the current loss. Pure; memory O(M·log n).
 *
 * The window is an exponential histogram: row i holds up to M buckets of 2^i values each (total and sum of
 * squared deviations per bucket), newest values in row 0; when a row reaches M + 1 buckets its two oldest
 * merge into one bucket of the next row. So n values take at most M·(⌊log₂ n⌋ + 1) buckets, and the window's
 * sum and variance are exact (variances combine exactly: Chan et al.'s pairwise update).
 *
 * Every `clock` updates, each split of the window at a bucket boundary into an older W₀ (n₀ values) and a
 * newer W₁ (n₁ values), both ≥ `minWindowLength`, is tested; if |μ₀ − μ₁| > ε_cut the oldest bucket is
 * dropped and the test starts again. ε_cut is the variance-based bound of MOA's `ADWIN.java`, as river's port
 * has it:
 *   ε_cut = √(2·(1/m)·σ²_W·ln(2/δ')) + (2/3)·(1/m)·ln(2/δ'),  δ' = δ / ln n,
 *   1/m = 1/(n₀ − L + 1) + 1/(n₁ − L + 1),  L = minWindowLength,
 * with σ²_W the (population) variance of the whole window. With L = 1, 1/m is the paper's 1/n₀ + 1/n₁; MOA
 * and river shift both lengths by L − 1, which widens the bound for short sub-windows. Sub-windows qualify at
 * ≥ L values (river's rule; MOA's is > L + 1), and, as MOA, every bucket boundary is tested.
 *
 * Defaults are MOA's and river's: δ = 0.002, clock = 32, M = 5, L = 5. Checking only every `clock` updates
 * and only at bucket boundaries delays a detection a little compared with checking every split every time
 * (ADWIN0), never makes it earlier; test/unit/shared/drift/adwin.test.ts measures the delay.
 */

export interface AdwinOptions {
  /** Confidence: bounds the chance, at each check, of shrinking a window that holds no change. */
  delta: number;
  /** Test for a cut every `clock` updates. */
  clock: number;
  /** M: buckets of each size kept before two merge. */
  maxBuckets: number;
  /** L: fewest values on each side of a cut. */
  minWindowLength: number;
}

export const DEFAULT_ADWIN_OPTIONS: AdwinOptions = {
  delta: 0.002,
  clock: 32,
  maxBuckets: 5,
  minWindowLength: 5,
};

/** One row of buckets of 2^i values each; index 0 is the oldest. */
interface Row {
  totals: Float64Array;
  /** Sum of squared deviations from the bucket's own mean. */
  m2: Float64Array;
  size: number;
}

export class Adwin {
  readonly options: AdwinOptions;
  /** rows[i] holds buckets of 2^i values; rows[0] is the newest. */
  private readonly rows: Row[] = [];
  private n = 0;
  private sum = 0;
  /** Sum of squared deviations from the window mean. */
  private m2 = 0;
  private ticks = 0;
  private detected = 0;

  constructor(options: Partial<AdwinOptions> = {}) {
    this.options = { ...DEFAULT_ADWIN_OPTIONS, ...options };
    const { delta, clock, maxBuckets, minWindowLength } = this.options;
    if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
    if (!(Number.isInteger(clock) && clock >= 1))
      throw new RangeError(`clock must be an integer ≥ 1, got ${clock}`);
    if (!(Number.isInteger(maxBuckets) && maxBuckets >= 1))
      throw new RangeError(`maxBuckets must be an integer ≥ 1, got ${maxBuckets}`);
    if (!(Number.isInteger(minWindowLength) && minWindowLength >= 1))
      throw new RangeError(`minWindowLength must be an integer ≥ 1, got ${minWindowLength}`);
  }

  /** Values in the window. */
  get width(): number {
    return this.n;
  }

  /** Mean of the window (0 when empty). */
  get mean(): number {
    return this.n > 0 ? this.sum / this.n : 0;
  }

  /** Population variance of the window (0 when empty). */
  get variance(): number {
    return this.n > 0 ? Math.max(0, this.m2) / this.n : 0;
  }

  /** Updates at which the window shrank. */
  get detections(): number {
    return this.detected;
  }

  /** Buckets held: the memory in use, at most M·(⌊log₂ width⌋ + 1). */
  get bucketCount(): number {
    let count = 0;
    for (const row of this.rows) count += row.size;
    return count;
  }

  /** Add one value; true when the window shrank (a change was detected). Non-finite values are ignored. */
  update(x: number): boolean {
    if (!Number.isFinite(x)) return false;
    this.insert(x);
    this.ticks++;
    if (this.ticks % this.options.clock !== 0) return false;
    const drifted = this.shrink();
    if (drifted) this.detected++;
    return drifted;
  }

  private insert(x: number): void {
    if (this.n > 0) {
      const mean = this.sum / this.n;
      this.m2 += (this.n * (x - mean) ** 2) / (this.n + 1);
    }
    this.n++;
    this.sum += x;
    this.push(0, x, 0);
    // A full row passes its two oldest buckets, merged, to the next row, which may then be full in turn.
    const { maxBuckets } = this.options;
    for (let i = 0; i < this.rows.length && this.rows[i]!.size > maxBuckets; i++) {
      const row = this.rows[i]!;
      const size = 2 ** i;
      const gap = row.totals[0]! / size - row.totals[1]! / size;
      this.push(i + 1, row.totals[0]! + row.totals[1]!, row.m2[0]! + row.m2[1]! + (size * gap * gap) / 2);
      shift(row, 2);
    }
  }

  private push(i: number, total: number, m2: number): void {
    if (i === this.rows.length) {
      const slots = this.options.maxBuckets + 1;
      this.rows.push({ totals: new Float64Array(slots), m2: new Float64Array(slots), size: 0 });
    }
    const row = this.rows[i]!;
    row.totals[row.size] = total;
    row.m2[row.size] = m2;
    row.size++;
  }

  /** Drop the oldest bucket while some split of the window cuts; true if anything was dropped. */
  private shrink(): boolean {
    const { delta, minWindowLength: L } = this.options;
    let shrank = false;
    for (let cut = true; cut; ) {
      cut = false;
      if (this.n < 2 * L) break;
      const variance = this.variance;
      const logTerm = Math.log((2 * Math.log(this.n)) / delta); // ln(2/δ'), δ' = δ/ln n
      let n0 = 0;
      let u0 = 0;
      scan: for (let i = this.rows.length - 1; i >= 0; i--) {
        const row = this.rows[i]!;
        const size = 2 ** i;
        for (let k = 0; k < row.size; k++) {
          n0 += size;
          u0 += row.totals[k]!;
          const n1 = this.n - n0;
          if (n1 < L) break scan; // n₁ only shrinks from here on
          if (n0 < L) continue;
          const gap = u0 / n0 - (this.sum - u0) / n1;
          const mRecip = 1 / (n0 - L + 1) + 1 / (n1 - L + 1);
          const epsilon = Math.sqrt(2 * mRecip * variance * logTerm) + (2 / 3) * mRecip * logTerm;
          if (Math.abs(gap) > epsilon) {
            this.dropOldest();
            cut = shrank = true;
            break scan;
          }
        }
      }
    }
    return shrank;
  }

  private dropOldest(): void {
    const i = this.rows.length - 1;
    const row = this.rows[i]!;
    const size = 2 ** i;
    const total = row.totals[0]!;
    const rest = this.n - size;
    this.sum -= total;
    if (rest > 0) {
      const gap = total / size - this.sum / rest;
      this.m2 -= row.m2[0]! + (size * rest * gap * gap) / (size + rest);
    } else {
      this.sum = 0;
      this.m2 = 0;
    }
    this.n = rest;
    shift(row, 1);
    while (this.rows.length > 0 && this.rows[this.rows.length - 1]!.size === 0) this.rows.pop();
  }
}

/** Remove the `count` oldest buckets of a row. */
function shift(row: Row, count: number): void {
  row.totals.copyWithin(0, count, row.size);
  row.m2.copyWithin(0, count, row.size);
  row.size -= count;
}
