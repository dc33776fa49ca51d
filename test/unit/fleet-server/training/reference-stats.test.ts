import { describe, expect, it } from 'vitest';
import { runTrainingJob } from '../../../../fleet-server/training/job.js';
import {
  binIndex,
  computeReferenceStats,
  quantileBins,
  ReferenceStatsSchema,
} from '../../../../fleet-server/training/reference-stats.js';
import { classificationData, regressionData } from './fixtures.js';

function sum(xs: number[]): number {
  return xs.reduce((s, x) => s + x, 0);
}

describe('quantileBins', () => {
  it('cuts 0..10 into quartiles by hand', () => {
    const values = Array.from({ length: 11 }, (_, i) => i);
    const b = quantileBins(values, 4);
    expect(b.edges).toEqual([0, 2.5, 5, 7.5, 10]);
    // [0,2.5): 0,1,2 · [2.5,5): 3,4 · [5,7.5): 5,6,7 · [7.5,10]: 8,9,10
    expect(b.proportions).toEqual([3 / 11, 2 / 11, 3 / 11, 3 / 11]);
  });

  it('merges equal edges and keeps a constant feature as one bin', () => {
    const b = quantileBins([1, 1, 1, 1, 1, 1, 2, 3], 4);
    expect(b.edges).toEqual([1, 1.25, 3]);
    expect(sum(b.proportions)).toBeCloseTo(1, 12);
    expect(quantileBins([4, 4, 4], 10)).toEqual({ edges: [4], proportions: [1] });
  });

  it('puts out-of-range values in the outer bins', () => {
    expect(binIndex([0, 1, 2], -5)).toBe(0);
    expect(binIndex([0, 1, 2], 1)).toBe(1);
    expect(binIndex([0, 1, 2], 9)).toBe(1);
    expect(binIndex([4], 4)).toBe(0);
  });
});

describe('computeReferenceStats', () => {
  it('classifier: per-feature bins sum to 1, edges increase, predicted class shares', () => {
    const stats = computeReferenceStats({
      features: Float32Array.from([1, 10, 2, 10, 3, 10, 4, 10]),
      featureNames: ['a', 'b'],
      outputs: Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.3, 0.7, 0.6, 0.4]),
      classes: ['no', 'yes'],
      bins: 2,
    });
    expect(ReferenceStatsSchema.parse(stats)).toEqual(stats);
    expect(stats.features[0]).toEqual({
      name: 'a',
      mean: 2.5,
      std: Math.sqrt(1.25),
      min: 1,
      max: 4,
      bins: { edges: [1, 2.5, 4], proportions: [0.5, 0.5] },
    });
    expect(stats.features[1]!.bins).toEqual({ edges: [10], proportions: [1] });
    expect(stats.predictions).toEqual({
      kind: 'classification',
      classes: ['no', 'yes'],
      proportions: [0.5, 0.5],
    });
  });

  it('schema rejects decreasing edges and mismatched proportions', () => {
    const bad = (bins: unknown) =>
      ReferenceStatsSchema.safeParse({
        schema: 'edgefleet.reference-stats/v1',
        rows: 2,
        features: [{ name: 'a', mean: 0, std: 1, min: 0, max: 1, bins }],
        predictions: { kind: 'regression', bins: { edges: [0, 1], proportions: [1] } },
      }).success;
    expect(bad({ edges: [0, 1], proportions: [1] })).toBe(true);
    expect(bad({ edges: [1, 0], proportions: [1] })).toBe(false);
    expect(bad({ edges: [0, 1, 2], proportions: [1] })).toBe(false);
  });

  it.each([
    ['classification', classificationData(600), { kind: 'classification' as const }],
    ['regression', regressionData(600), { kind: 'regression' as const }],
  ])('from a %s job: valid, bins sum to 1, edges strictly increasing', async (_, data, kind) => {
    const job = await runTrainingJob({
      ...data,
      backend: 'wasm',
      config: { ...kind, hidden: [8], epochs: 2 },
    });
    const stats = ReferenceStatsSchema.parse(job.referenceStats);
    expect(stats.rows).toBe(job.trainRows);
    expect(stats.features.map((f) => f.name)).toEqual(data.featureNames);
    const binned = [
      ...stats.features.map((f) => f.bins),
      ...(stats.predictions.kind === 'regression' ? [stats.predictions.bins] : []),
    ];
    for (const b of binned) {
      expect(sum(b.proportions)).toBeCloseTo(1, 9);
      for (let i = 1; i < b.edges.length; i++) expect(b.edges[i]!).toBeGreaterThan(b.edges[i - 1]!);
      expect(b.edges.length).toBeGreaterThan(5); // 10 bins by default, continuous data
    }
    if (stats.predictions.kind === 'classification')
      expect(sum(stats.predictions.proportions)).toBeCloseTo(1, 9);
  });
});
