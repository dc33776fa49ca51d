/**
 * Reference statistics for drift detection, computed from the training split: per raw (un-standardized)
 * feature, quantile bin edges with the share of training rows per bin, plus mean/std/min/max; and the
 * distribution of the model's predictions on the same rows. Carried in the signed manifest's
 * `referenceStats`.
 *
 * Bins: edges are strictly increasing (equal quantiles are merged); bin i is [edges[i], edges[i+1]), the
 * last bin is closed. Values outside [edges[0], edges[last]] (seen later, on devices) belong to the first /
 * last bin. A constant feature has one edge and one bin holding everything.
 */
import { binIndex } from '../../shared/drift/bins.js';
import {
  type FeatureStats,
  type PredictionStats,
  REFERENCE_STATS_SCHEMA,
  type ReferenceStats,
} from '../../shared/drift/reference.js';
import { argmaxRows } from './metrics.js';

export {
  FeatureStatsSchema,
  PredictionStatsSchema,
  REFERENCE_STATS_SCHEMA,
  ReferenceStatsSchema,
} from '../../shared/drift/reference.js';
export type { FeatureStats, PredictionStats, ReferenceStats };
export { binIndex };

/** Quantile bins of `values` (linear interpolation between order statistics, as numpy's default). */
export function quantileBins(
  values: ArrayLike<number>,
  bins: number,
): { edges: number[]; proportions: number[] } {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) throw new RangeError('quantile bins need at least one value');
  const edges: number[] = [];
  for (let q = 0; q <= bins; q++) {
    const pos = (q / bins) * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, n - 1);
    const e = q === bins ? sorted[n - 1]! : sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
    if (edges.length === 0 || e > edges[edges.length - 1]!) edges.push(e);
  }
  const counts = new Array<number>(Math.max(1, edges.length - 1)).fill(0);
  for (let i = 0; i < n; i++) counts[binIndex(edges, sorted[i]!)]!++;
  return { edges, proportions: counts.map((c) => c / n) };
}

export function computeReferenceStats(options: {
  /** Raw training rows, row-major [n, d]. */
  features: Float32Array;
  featureNames: readonly string[];
  /** The model's outputs on the same rows: probabilities [n, k] or predictions [n, 1]. */
  outputs: Float32Array;
  classes: readonly string[] | null;
  bins: number;
}): ReferenceStats {
  const d = options.featureNames.length;
  const n = options.features.length / d;
  const column = new Float64Array(n);
  const features = options.featureNames.map((name, j): FeatureStats => {
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const v = options.features[i * d + j]!;
      column[i] = v;
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const mean = sum / n;
    let sq = 0;
    for (let i = 0; i < n; i++) sq += (column[i]! - mean) ** 2;
    return { name, mean, std: Math.sqrt(sq / n), min, max, bins: quantileBins(column, options.bins) };
  });
  let predictions: PredictionStats;
  if (options.classes) {
    const k = options.classes.length;
    const counts = new Array<number>(k).fill(0);
    for (const c of argmaxRows(options.outputs, k)) counts[c]!++;
    predictions = {
      kind: 'classification',
      classes: [...options.classes],
      proportions: counts.map((c) => c / n),
    };
  } else {
    predictions = { kind: 'regression', bins: quantileBins(options.outputs, options.bins) };
  }
  return { schema: REFERENCE_STATS_SCHEMA, rows: n, features, predictions };
}
