/**
 * Prediction drift: has the distribution of the model's outputs moved away from the one it had on its
 * training rows (the `predictions` of the signed reference statistics)? It needs no labels, and it reacts
 * when the inputs move in a way that matters to the model. Pure; counting is streaming, in fixed memory.
 *
 * - Classifier: the current window counts each row's argmax class; the test is the chi-square test of
 *   homogeneity against the reference class shares (chi2.ts; classes are unordered, so no KS).
 * - Regressor: the current window counts predictions over the reference prediction bins; the test is the same
 *   binned two-sample KS test the features get (ks.ts).
 * PSI and the Jensen–Shannon distance are reported beside the test, as for features. Below `minSamples`
 * current rows there is no verdict ("insufficient_data", never "no_drift"); `alpha` and `minSamples` default
 * to the feature verdict's (verdict.ts), so one window is judged by one set of rules.
 */
import { BinnedCounts } from './bins.js';
import { chi2Test } from './chi2.js';
import { jensenShannon, psi } from './distance.js';
import { ksTest } from './ks.js';
import type { PredictionStats } from './reference.js';
import { DEFAULT_DRIFT_OPTIONS, type DriftOptions } from './verdict.js';

export type PredictionDriftOptions = Pick<DriftOptions, 'alpha' | 'minSamples'>;

export type PredictionDrift =
  | {
      verdict: 'insufficient_data';
      kind: PredictionStats['kind'];
      samples: number;
      minSamples: number;
    }
  | {
      verdict: 'drift' | 'no_drift';
      kind: PredictionStats['kind'];
      test: 'chi2' | 'ks';
      statistic: number;
      pValue: number;
      psi: number;
      jensenShannon: number;
      samples: number;
      /** pValue < alpha (the same fact as `verdict === 'drift'`, for consumers that want a flag). */
      drifted: boolean;
    };

/**
 * Prediction drift of one window. `current`: counts per class (classifier) or per reference bin (regressor),
 * as `PredictionCounts` keeps them; `referenceRows`: the rows the reference statistics describe.
 */
export function predictionDrift(
  reference: PredictionStats,
  current: readonly number[],
  referenceRows: number,
  options: Partial<PredictionDriftOptions> = {},
): PredictionDrift {
  const alpha = options.alpha ?? DEFAULT_DRIFT_OPTIONS.alpha;
  const minSamples = options.minSamples ?? DEFAULT_DRIFT_OPTIONS.minSamples;
  const referenceShares =
    reference.kind === 'classification' ? reference.proportions : reference.bins.proportions;
  if (current.length !== referenceShares.length)
    throw new Error(
      `prediction counts have ${current.length} entries, the reference has ${referenceShares.length}`,
    );
  const samples = current.reduce((a, b) => a + b, 0);
  if (!(samples >= minSamples))
    return { verdict: 'insufficient_data', kind: reference.kind, samples, minSamples };
  const { test, statistic, pValue } =
    reference.kind === 'classification'
      ? { test: 'chi2' as const, ...chi2Test(referenceShares, current, referenceRows) }
      : { test: 'ks' as const, ...ksTest(referenceShares, current, referenceRows, samples) };
  const drifted = pValue < alpha;
  return {
    verdict: drifted ? 'drift' : 'no_drift',
    kind: reference.kind,
    test,
    statistic,
    pValue,
    psi: psi(referenceShares, current),
    jensenShannon: jensenShannon(referenceShares, current),
    samples,
    drifted,
  };
}

/**
 * Streaming counts of a model's outputs in the shape `predictionDrift` takes: one counter per class or per
 * reference bin, whatever the traffic. Rows that cannot be counted honestly (wrong width, a non-finite value)
 * are not counted but tallied in `skipped`, so they never skew the histogram and never go unseen.
 */
export class PredictionCounts {
  readonly counts: number[];
  total = 0;
  skipped = 0;
  private readonly bins: BinnedCounts | null;

  constructor(readonly reference: PredictionStats) {
    if (reference.kind === 'classification') {
      this.bins = null;
      this.counts = new Array<number>(reference.classes.length).fill(0);
    } else {
      this.bins = new BinnedCounts(reference.bins.edges);
      this.counts = this.bins.counts;
    }
  }

  /** One output row: class probabilities or scores (argmax, first on ties), or a regressor's single value. */
  addOutputRow(row: ArrayLike<number>): void {
    if (this.bins) {
      const value = row.length === 1 ? row[0]! : Number.NaN;
      if (!Number.isFinite(value)) {
        this.skipped++;
        return;
      }
      this.bins.add(value);
    } else {
      const best = argmax(row, this.counts.length);
      if (best < 0) {
        this.skipped++;
        return;
      }
      this.counts[best]!++;
    }
    this.total++;
  }

  /**
   * `rows` output rows laid out one after another in `data`, `width` values each: the same as `addOutputRow`
   * on each, without a view per row (the device's monitor calls this per request, on its hot path).
   */
  addOutputRows(data: ArrayLike<number>, rows: number, width: number): void {
    for (let r = 0; r < rows; r++) {
      const offset = r * width;
      if (this.bins) {
        const value = width === 1 ? data[offset]! : Number.NaN;
        if (!Number.isFinite(value)) {
          this.skipped++;
          continue;
        }
        this.bins.add(value);
      } else {
        const best = width === this.counts.length ? argmaxAt(data, offset, width) : -1;
        if (best < 0) {
          this.skipped++;
          continue;
        }
        this.counts[best]!++;
      }
      this.total++;
    }
  }

  reset(): void {
    this.counts.fill(0);
    this.bins?.reset();
    this.total = 0;
    this.skipped = 0;
  }
}

/** Index of the largest of `k` finite values (first on ties, as fleet training's argmax); −1 if unusable. */
function argmax(row: ArrayLike<number>, k: number): number {
  return row.length === k ? argmaxAt(row, 0, k) : -1;
}

/** `argmax` over `data[offset .. offset + k)`. */
function argmaxAt(data: ArrayLike<number>, offset: number, k: number): number {
  let best = 0;
  for (let j = 0; j < k; j++) {
    const v = data[offset + j]!;
    if (!Number.isFinite(v)) return -1;
    if (v > data[offset + best]!) best = j;
  }
  return best;
}
