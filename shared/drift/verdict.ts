/**
 * The dataset-level drift verdict from per-feature tests over one window. Pure.
 *
 * Defaults, and why:
 * - Each numeric feature is tested with the two-sample KS test at α = 0.05 (Alibi Detect's `KSDrift` default
 *   p-value and Evidently's for numeric columns), on binned counts against the signed reference proportions.
 * - p-values are corrected across features with Benjamini–Hochberg by default (Bonferroni, Alibi Detect's
 *   default, is available; it controls the family-wise error and is conservative with many features, while
 *   BH controls the false discovery rate and keeps power when several features move together — the usual case
 *   for real drift).
 * - The dataset drifts when at least `driftShare` = 0.5 of the features drift (Evidently's `drift_share`
 *   default).
 * - Below `minSamples` = 100 current samples there is no verdict: "insufficient data", never "no drift"
 *   (KS at n < 100 on binned data detects only gross shifts; saying "no drift" there would be a false comfort).
 * PSI and the Jensen–Shannon distance are reported per feature beside the test, for people and dashboards.
 */
import { jensenShannon, psi } from './distance.js';
import { ksTest } from './ks.js';
import { benjaminiHochberg, bonferroni } from './multiple.js';

export interface DriftOptions {
  alpha: number;
  correction: 'bh' | 'bonferroni' | 'none';
  driftShare: number;
  minSamples: number;
}

export const DEFAULT_DRIFT_OPTIONS: DriftOptions = {
  alpha: 0.05,
  correction: 'bh',
  driftShare: 0.5,
  minSamples: 100,
};

export interface FeatureWindow {
  name: string;
  /** Reference proportions per bin (from the manifest) and the reference row count. */
  referenceProportions: readonly number[];
  referenceRows: number;
  /** Current counts over the same bins. */
  counts: readonly number[];
}

export interface FeatureDrift {
  name: string;
  ksStatistic: number;
  pValue: number;
  /** After the multiple-comparison correction. */
  adjustedPValue: number;
  psi: number;
  jensenShannon: number;
  drifted: boolean;
}

export type DriftVerdict =
  | { verdict: 'insufficient_data'; samples: number; minSamples: number; features: [] }
  | { verdict: 'drift' | 'no_drift'; samples: number; driftedShare: number; features: FeatureDrift[] };

export function driftVerdict(
  features: readonly FeatureWindow[],
  options: Partial<DriftOptions> = {},
): DriftVerdict {
  const o = { ...DEFAULT_DRIFT_OPTIONS, ...options };
  const samples = Math.min(...features.map((f) => f.counts.reduce((a, b) => a + b, 0)));
  if (features.length === 0 || !(samples >= o.minSamples)) {
    return {
      verdict: 'insufficient_data',
      samples: Number.isFinite(samples) ? samples : 0,
      minSamples: o.minSamples,
      features: [],
    };
  }
  const tests = features.map((f) => ({
    f,
    ks: ksTest(
      f.referenceProportions,
      f.counts,
      f.referenceRows,
      f.counts.reduce((a, b) => a + b, 0),
    ),
  }));
  const raw = tests.map((t) => t.ks.pValue);
  const adjusted =
    o.correction === 'bh' ? benjaminiHochberg(raw) : o.correction === 'bonferroni' ? bonferroni(raw) : raw;
  const results: FeatureDrift[] = tests.map(({ f, ks }, i) => ({
    name: f.name,
    ksStatistic: ks.statistic,
    pValue: ks.pValue,
    adjustedPValue: adjusted[i]!,
    psi: psi(f.referenceProportions, f.counts),
    jensenShannon: jensenShannon(f.referenceProportions, f.counts),
    drifted: adjusted[i]! < o.alpha,
  }));
  const driftedShare = results.filter((r) => r.drifted).length / results.length;
  return {
    verdict: driftedShare >= o.driftShare ? 'drift' : 'no_drift',
    samples,
    driftedShare,
    features: results,
  };
}
