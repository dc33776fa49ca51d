/**
 * Evaluation metrics: pure functions over arrays. Classifier probabilities are row-major [n, k];
 * labels are class indices. Definitions follow scikit-learn's so figures can be checked against it.
 */

type Numbers = ArrayLike<number>;

/** Index of the largest of `k` values starting at `offset` (first wins on ties). */
export function argmaxRow(values: Numbers, offset: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (values[offset + j]! > values[offset + best]!) best = j;
  return best;
}

export function argmaxRows(probabilities: Numbers, k: number): Int32Array {
  const n = probabilities.length / k;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = argmaxRow(probabilities, i * k, k);
  return out;
}

export function accuracy(labels: Numbers, predicted: Numbers): number {
  checkSameLength(labels, predicted);
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === predicted[i]) hits++;
  return hits / labels.length;
}

/**
 * Unweighted mean of per-class F1 over the classes that occur in `labels` or `predicted`
 * (scikit-learn's `f1_score(average='macro')`; a class with no true and no predicted rows is skipped,
 * a class with precision and recall both 0 scores 0).
 */
export function macroF1(labels: Numbers, predicted: Numbers): number {
  checkSameLength(labels, predicted);
  const tp = new Map<number, number>();
  const fp = new Map<number, number>();
  const fn = new Map<number, number>();
  const add = (m: Map<number, number>, c: number) => m.set(c, (m.get(c) ?? 0) + 1);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    const p = predicted[i]!;
    if (y === p) add(tp, y);
    else {
      add(fp, p);
      add(fn, y);
    }
  }
  const classes = new Set([...tp.keys(), ...fp.keys(), ...fn.keys()]);
  let sum = 0;
  for (const c of classes) {
    const t = tp.get(c) ?? 0;
    const denominator = 2 * t + (fp.get(c) ?? 0) + (fn.get(c) ?? 0);
    sum += denominator === 0 ? 0 : (2 * t) / denominator;
  }
  return classes.size === 0 ? 0 : sum / classes.size;
}

/** Mean negative log-probability of the true class, probabilities clipped to [eps, 1 − eps]. */
export function logLoss(labels: Numbers, probabilities: Numbers, k: number, eps = 1e-15): number {
  if (probabilities.length !== labels.length * k) {
    throw new RangeError(`expected ${labels.length}×${k} probabilities, got ${probabilities.length}`);
  }
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = probabilities[i * k + labels[i]!]!;
    sum -= Math.log(Math.min(1 - eps, Math.max(eps, p)));
  }
  return sum / labels.length;
}

/**
 * Binary ROC-AUC by ranks (Mann–Whitney U): the probability that a random positive scores above a random
 * negative, ties counting half (tied scores share their average rank). NaN when one class is absent.
 */
export function rocAuc(labels: Numbers, scores: Numbers): number {
  checkSameLength(labels, scores);
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let rankSumPositives = 0;
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && scores[order[end]!] === scores[order[start]!]) end++;
    const averageRank = (start + 1 + end) / 2; // ranks start..end-1, 1-based
    for (let j = start; j < end; j++) {
      if (labels[order[j]!] === 1) {
        positives++;
        rankSumPositives += averageRank;
      }
    }
    start = end;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSumPositives - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export function rmse(targets: Numbers, predictions: Numbers): number {
  return Math.sqrt(mse(targets, predictions));
}

export function mse(targets: Numbers, predictions: Numbers): number {
  checkSameLength(targets, predictions);
  let sum = 0;
  for (let i = 0; i < targets.length; i++) sum += (targets[i]! - predictions[i]!) ** 2;
  return sum / targets.length;
}

export function mae(targets: Numbers, predictions: Numbers): number {
  checkSameLength(targets, predictions);
  let sum = 0;
  for (let i = 0; i < targets.length; i++) sum += Math.abs(targets[i]! - predictions[i]!);
  return sum / targets.length;
}

export interface ClassificationMetrics {
  kind: 'classification';
  rows: number;
  accuracy: number;
  macroF1: number;
  logLoss: number;
  /** Binary classifiers only: class 1's probability as the score. */
  rocAuc?: number;
}

export interface RegressionMetrics {
  kind: 'regression';
  rows: number;
  rmse: number;
  mae: number;
}

export type Metrics = ClassificationMetrics | RegressionMetrics;

export function classificationMetrics(
  labels: Numbers,
  probabilities: Numbers,
  k: number,
): ClassificationMetrics {
  const predicted = argmaxRows(probabilities, k);
  const out: ClassificationMetrics = {
    kind: 'classification',
    rows: labels.length,
    accuracy: accuracy(labels, predicted),
    macroF1: macroF1(labels, predicted),
    logLoss: logLoss(labels, probabilities, k),
  };
  if (k === 2) {
    const scores = new Float64Array(labels.length);
    for (let i = 0; i < labels.length; i++) scores[i] = probabilities[i * 2 + 1]!;
    out.rocAuc = rocAuc(labels, scores);
  }
  return out;
}

export function regressionMetrics(targets: Numbers, predictions: Numbers): RegressionMetrics {
  return {
    kind: 'regression',
    rows: targets.length,
    rmse: rmse(targets, predictions),
    mae: mae(targets, predictions),
  };
}

function checkSameLength(a: Numbers, b: Numbers): void {
  if (a.length !== b.length) throw new RangeError(`length mismatch: ${a.length} vs ${b.length}`);
  if (a.length === 0) throw new RangeError('metrics need at least one row');
}
