/**
 * Prediction drift: the right test per model kind, wired to the SciPy-checked statistics (chi-square and KS
 * fixtures), no verdict below the minimum window, no drift on outputs drawn like the reference and drift when
 * they move; and the streaming counts (argmax per row, bins for a regressor, unusable rows set aside).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PredictionCounts, predictionDrift } from '../../../../shared/drift/prediction.js';
import type { PredictionStats } from '../../../../shared/drift/reference.js';
import { mulberry32 } from '../../../../shared/onnx/mlp.js';

const chi2Fixtures = (
  JSON.parse(readFileSync(new URL('../../../fixtures/drift/chi2.json', import.meta.url), 'utf8')) as {
    chi2: {
      name: string;
      referenceProportions: number[];
      referenceRows: number;
      current: number[];
      statistic: number;
      pValue: number;
    }[];
  }
).chi2;
const ksFixtures = (
  JSON.parse(readFileSync(new URL('../../../fixtures/drift/distances.json', import.meta.url), 'utf8')) as {
    ks: { reference: number[]; current: number[]; n: number; m: number; statistic: number; pValue: number }[];
  }
).ks;

const close = (actual: number, expected: number) => {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(expected)));
};

const CLASSES: PredictionStats = {
  kind: 'classification',
  classes: ['cat', 'dog', 'bird', 'fish'],
  proportions: [0.4, 0.3, 0.2, 0.1],
};

/** `n` probability rows whose argmax is drawn with the given class shares. */
function classifierOutputs(shares: readonly number[], n: number, seed: number): Float32Array[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => {
    let u = rand();
    let cls = 0;
    while (cls < shares.length - 1 && u >= shares[cls]!) u -= shares[cls++]!;
    const row = Float32Array.from(shares, () => rand() * 0.4);
    row[cls] = 0.5 + rand() * 0.5;
    return row;
  });
}

function countAll(reference: PredictionStats, rows: readonly ArrayLike<number>[]): PredictionCounts {
  const counts = new PredictionCounts(reference);
  for (const row of rows) counts.addOutputRow(row);
  return counts;
}

describe('predictionDrift for a classifier (chi-square)', () => {
  it.each(
    chi2Fixtures.filter((c) => c.current.reduce((a, b) => a + b, 0) >= 100).map((c) => [c.name, c] as const),
  )('agrees with SciPy on %s', (_, c) => {
    const reference: PredictionStats = {
      kind: 'classification',
      classes: c.referenceProportions.map((_, i) => `c${i}`),
      proportions: c.referenceProportions,
    };
    const result = predictionDrift(reference, c.current, c.referenceRows);
    if (result.verdict === 'insufficient_data') throw new Error('expected a verdict');
    expect(result.test).toBe('chi2');
    expect(result.kind).toBe('classification');
    close(result.statistic, c.statistic);
    if (c.pValue > 0) close(result.pValue, c.pValue);
    expect(result.drifted).toBe(c.pValue < 0.05);
    expect(result.verdict).toBe(c.pValue < 0.05 ? 'drift' : 'no_drift');
  });

  it('finds no drift when the argmax classes are drawn with the reference shares', () => {
    for (const seed of [1, 2, 3]) {
      const counts = countAll(CLASSES, classifierOutputs(CLASSES.proportions, 2000, seed));
      expect(counts.total).toBe(2000);
      const result = predictionDrift(CLASSES, counts.counts, 50_000);
      expect(result).toMatchObject({ verdict: 'no_drift', test: 'chi2', samples: 2000, drifted: false });
      if (result.verdict !== 'insufficient_data') expect(result.psi).toBeLessThan(0.02);
    }
  });

  it('finds drift when the class shares move', () => {
    const counts = countAll(CLASSES, classifierOutputs([0.25, 0.3, 0.25, 0.2], 1000, 4));
    const result = predictionDrift(CLASSES, counts.counts, 50_000);
    expect(result).toMatchObject({ verdict: 'drift', drifted: true });
    if (result.verdict === 'insufficient_data') return;
    expect(result.pValue).toBeLessThan(1e-6);
    expect(result.psi).toBeGreaterThan(0.05);
    expect(result.jensenShannon).toBeGreaterThan(0.05);
    // A stricter alpha is honoured: the same window still drifts at 1e-6, not at 1e-300.
    expect(predictionDrift(CLASSES, counts.counts, 50_000, { alpha: 1e-300 }).verdict).toBe('no_drift');
  });

  it('says insufficient data below minSamples (default 100, as for features), never no drift', () => {
    expect(predictionDrift(CLASSES, [40, 30, 20, 9], 50_000)).toEqual({
      verdict: 'insufficient_data',
      kind: 'classification',
      samples: 99,
      minSamples: 100,
    });
    expect(predictionDrift(CLASSES, [40, 30, 20, 10], 50_000).verdict).toBe('no_drift');
    expect(predictionDrift(CLASSES, [400, 300, 200, 100], 50_000, { minSamples: 2000 }).verdict).toBe(
      'insufficient_data',
    );
  });

  it('refuses counts over different classes', () => {
    expect(() => predictionDrift(CLASSES, [1, 2, 3], 100)).toThrow(/3 entries, the reference has 4/);
  });
});

describe('predictionDrift for a regressor (binned KS)', () => {
  it.each(ksFixtures.filter((c) => c.m >= 100).map((c, i) => [i, c] as const))(
    'agrees with SciPy on KS case %i',
    (_, c) => {
      const reference: PredictionStats = {
        kind: 'regression',
        bins: {
          edges: c.reference.map((_, i) => i).concat(c.reference.length),
          proportions: c.reference.map((r) => r / c.n),
        },
      };
      const result = predictionDrift(reference, c.current, c.n);
      if (result.verdict === 'insufficient_data') throw new Error('expected a verdict');
      expect(result.test).toBe('ks');
      expect(result.kind).toBe('regression');
      close(result.statistic, c.statistic);
      close(result.pValue, c.pValue);
      expect(result.samples).toBe(c.m);
    },
  );

  const REGRESSION: PredictionStats = {
    kind: 'regression',
    bins: { edges: [0, 1, 2, 3, 4], proportions: [0.25, 0.25, 0.25, 0.25] },
  };

  it('finds no drift on predictions from the reference distribution and drift on shifted ones', () => {
    const rand = mulberry32(11);
    const same = countAll(
      REGRESSION,
      Array.from({ length: 1000 }, () => [rand() * 4]),
    );
    expect(predictionDrift(REGRESSION, same.counts, 10_000)).toMatchObject({
      verdict: 'no_drift',
      test: 'ks',
    });
    const shifted = countAll(
      REGRESSION,
      Array.from({ length: 1000 }, () => [rand() * 4 + 0.5]),
    );
    expect(predictionDrift(REGRESSION, shifted.counts, 10_000)).toMatchObject({
      verdict: 'drift',
      drifted: true,
    });
  });
});

describe('PredictionCounts', () => {
  it('counts rows laid out in one array exactly as it counts them one by one', () => {
    const classifier: PredictionStats = {
      kind: 'classification',
      classes: ['a', 'b', 'c'],
      proportions: [0.3, 0.3, 0.4],
    };
    const regressor: PredictionStats = {
      kind: 'regression',
      bins: { edges: [0, 1, 2, 3], proportions: [0.3, 0.3, 0.4] },
    };
    const random = mulberry32(17);
    for (const [reference, width] of [
      [classifier, 3],
      [regressor, 1],
    ] as const) {
      const rows = 300;
      const data = Float32Array.from({ length: rows * width }, () =>
        random() < 0.02 ? Number.NaN : random() * 3.5 - 0.2,
      );
      const byRow = new PredictionCounts(reference);
      for (let r = 0; r < rows; r++) byRow.addOutputRow(data.subarray(r * width, (r + 1) * width));
      const together = new PredictionCounts(reference);
      together.addOutputRows(data, rows, width);
      expect([together.counts, together.total, together.skipped]).toEqual([
        byRow.counts,
        byRow.total,
        byRow.skipped,
      ]);
      expect(together.skipped).toBeGreaterThan(0);
    }
    // A width that is not the class count sets every row aside.
    const wrong = new PredictionCounts(classifier);
    wrong.addOutputRows(Float32Array.from([0.1, 0.9, 0.2, 0.8]), 2, 2);
    expect([wrong.total, wrong.skipped]).toEqual([0, 2]);
  });

  it('counts the argmax class per row, the first on ties', () => {
    const counts = countAll(CLASSES, [
      [0.1, 0.7, 0.1, 0.1],
      [0.3, 0.3, 0.2, 0.2],
      [0, 0, 0, 1],
      Float32Array.of(0.2, 0.2, 0.5, 0.1),
    ]);
    expect(counts.counts).toEqual([1, 1, 1, 1]);
    expect(counts.total).toBe(4);
  });

  it('sets aside rows of the wrong width or with a non-finite value, and says how many', () => {
    const counts = countAll(CLASSES, [
      [0.5, 0.5, 0],
      [0.1, Number.NaN, 0.2, 0.3],
      [0.1, 0.2, 0.3, 0.4],
    ]);
    expect(counts.counts).toEqual([0, 0, 0, 1]);
    expect(counts.skipped).toBe(2);
  });

  it('bins a regressor’s single value over the reference edges (outside values to the end bins)', () => {
    const reference: PredictionStats = {
      kind: 'regression',
      bins: { edges: [0, 1, 2], proportions: [0.5, 0.5] },
    };
    const counts = countAll(reference, [[-5], [0.5], [1], [2], [9], [Number.POSITIVE_INFINITY], [1, 2]]);
    expect(counts.counts).toEqual([2, 3]);
    expect(counts.total).toBe(5);
    expect(counts.skipped).toBe(2);
    counts.reset();
    expect([counts.counts, counts.total, counts.skipped]).toEqual([[0, 0], 0, 0]);
    counts.addOutputRow([1.5]);
    expect(counts.counts).toEqual([0, 1]);
  });
});
