/**
 * The dataset verdict: insufficient data below the minimum window (never "no drift"), no drift on samples
 * drawn from the reference, drift when enough features shift, and the correction and share rules.
 */
import { describe, expect, it } from 'vitest';
import { BinnedCounts, binIndex } from '../../../../shared/drift/bins.js';
import { driftVerdict, type FeatureWindow } from '../../../../shared/drift/verdict.js';
import { mulberry32 } from '../../../../shared/onnx/mlp.js';

const EDGES = [-2, -1, -0.5, 0, 0.5, 1, 2];
/** Reference: a uniform distribution over [-2, 2]. */
const REFERENCE = (() => {
  const counts = new BinnedCounts(EDGES);
  const rand = mulberry32(1);
  for (let i = 0; i < 100_000; i++) counts.add(rand() * 4 - 2);
  return counts.counts.map((c) => c / counts.total);
})();

function window(name: string, n: number, seed: number, shift = 0): FeatureWindow {
  const counts = new BinnedCounts(EDGES);
  const rand = mulberry32(seed);
  for (let i = 0; i < n; i++) counts.add(rand() * 4 - 2 + shift);
  return { name, referenceProportions: REFERENCE, referenceRows: 100_000, counts: counts.counts };
}

describe('driftVerdict', () => {
  it('says insufficient data below the minimum window, never no drift', () => {
    const v = driftVerdict([window('a', 99, 2, 3)]);
    expect(v).toEqual({ verdict: 'insufficient_data', samples: 99, minSamples: 100, features: [] });
    expect(driftVerdict([])).toMatchObject({ verdict: 'insufficient_data' });
  });

  it('finds no drift in samples from the reference distribution', () => {
    const v = driftVerdict(Array.from({ length: 10 }, (_, i) => window(`f${i}`, 2000, 10 + i)));
    expect(v.verdict).toBe('no_drift');
    if (v.verdict !== 'insufficient_data') expect(v.driftedShare).toBe(0);
  });

  it('finds drift when at least driftShare of the features shift', () => {
    const features = Array.from({ length: 10 }, (_, i) => window(`f${i}`, 2000, 10 + i, i < 6 ? 0.8 : 0));
    const v = driftVerdict(features);
    expect(v.verdict).toBe('drift');
    if (v.verdict === 'insufficient_data') return;
    expect(v.driftedShare).toBe(0.6);
    expect(v.features.filter((f) => f.drifted).map((f) => f.name)).toEqual([
      'f0',
      'f1',
      'f2',
      'f3',
      'f4',
      'f5',
    ]);
    expect(v.features[0]!.psi).toBeGreaterThan(0.1);
    // The same features below the share: no dataset drift.
    expect(driftVerdict(features, { driftShare: 0.7 }).verdict).toBe('no_drift');
  });

  it('corrects for the number of features: Bonferroni is stricter than BH', () => {
    const features = Array.from({ length: 20 }, (_, i) => window(`f${i}`, 300, 100 + i, i < 4 ? 0.25 : 0));
    const bh = driftVerdict(features, { correction: 'bh', driftShare: 0 });
    const bonf = driftVerdict(features, { correction: 'bonferroni', driftShare: 0 });
    const none = driftVerdict(features, { correction: 'none', driftShare: 0 });
    if (
      bh.verdict === 'insufficient_data' ||
      bonf.verdict === 'insufficient_data' ||
      none.verdict === 'insufficient_data'
    )
      throw new Error('expected a verdict');
    const count = (v: typeof bh) => v.features.filter((f) => f.drifted).length;
    expect(count(bonf)).toBeLessThanOrEqual(count(bh));
    expect(count(bh)).toBeLessThanOrEqual(count(none));
  });

  it('bins like the fleet: [e_i, e_i+1), last bin closed, outside values to the ends', () => {
    expect([-9, -2, -1, 1.99, 2, 9].map((x) => binIndex(EDGES, x))).toEqual([0, 0, 1, 5, 5, 5]);
  });
});
