/** Metrics against hand-computed values and scikit-learn documentation examples worked by hand. */
import { describe, expect, it } from 'vitest';
import {
  accuracy,
  argmaxRows,
  classificationMetrics,
  logLoss,
  macroF1,
  mae,
  regressionMetrics,
  rmse,
  rocAuc,
} from '../../../../fleet-server/training/metrics.js';

describe('classification metrics', () => {
  it('accuracy counts exact matches', () => {
    expect(accuracy([0, 1, 2, 1], [0, 2, 2, 1])).toBe(0.75);
  });

  it('macro-F1 matches the sklearn f1_score example', () => {
    // y_true=[0,1,2,0,1,2], y_pred=[0,2,1,0,0,1]: F1 = [0.8, 0, 0] → 0.2666…
    expect(macroF1([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1])).toBeCloseTo(0.8 / 3, 12);
  });

  it('macro-F1 by hand on a binary case', () => {
    // class 1: tp=2 fp=1 fn=1 → 4/6; class 0: tp=1 fp=1 fn=1 → 2/4
    expect(macroF1([1, 1, 1, 0, 0], [1, 1, 0, 1, 0])).toBeCloseTo((4 / 6 + 2 / 4) / 2, 12);
  });

  it('macro-F1 skips classes absent from both labels and predictions', () => {
    expect(macroF1([0, 0, 2], [0, 0, 2])).toBe(1);
  });

  it('log-loss matches the sklearn log_loss example', () => {
    // log_loss(["spam","ham","ham","spam"], [[.1,.9],[.9,.1],[.8,.2],[.35,.65]]) with ham=0, spam=1
    const expected = -(Math.log(0.9) + Math.log(0.9) + Math.log(0.8) + Math.log(0.65)) / 4;
    expect(logLoss([1, 0, 0, 1], [0.1, 0.9, 0.9, 0.1, 0.8, 0.2, 0.35, 0.65], 2)).toBeCloseTo(expected, 12);
    expect(expected).toBeCloseTo(0.21616, 5);
  });

  it('log-loss clips zero probabilities instead of returning Infinity', () => {
    expect(logLoss([0], [0, 1], 2, 1e-15)).toBeCloseTo(-Math.log(1e-15), 9);
  });

  it('ROC-AUC matches the sklearn roc_auc_score example', () => {
    expect(rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])).toBe(0.75);
  });

  it('ROC-AUC averages ties', () => {
    // one positive and one negative tied: half credit; other pairs ordered correctly
    // pairs (pos, neg): (0.5, 0.5)=0.5, (0.5, 0.1)=1, (0.9, 0.5)=1, (0.9, 0.1)=1 → 3.5/4
    expect(rocAuc([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.1])).toBe(0.875);
    expect(rocAuc([1, 0], [0.3, 0.3])).toBe(0.5);
    expect(rocAuc([1, 1], [0.3, 0.4])).toBeNaN();
  });

  it('argmax picks the first of equal maxima', () => {
    expect([...argmaxRows([0.2, 0.5, 0.3, 0.4, 0.4, 0.2], 3)]).toEqual([1, 0]);
  });

  it('classificationMetrics adds ROC-AUC only for binary classifiers', () => {
    const binary = classificationMetrics([0, 1], [0.8, 0.2, 0.3, 0.7], 2);
    expect(binary).toMatchObject({ accuracy: 1, macroF1: 1, rocAuc: 1 });
    expect(classificationMetrics([0, 1, 2], [1, 0, 0, 0, 1, 0, 0, 0, 1], 3).rocAuc).toBeUndefined();
  });
});

describe('regression metrics', () => {
  it('match the sklearn mean_absolute_error / mean_squared_error example', () => {
    const y = [3, -0.5, 2, 7];
    const p = [2.5, 0.0, 2, 8];
    expect(mae(y, p)).toBe(0.5);
    expect(rmse(y, p)).toBeCloseTo(Math.sqrt(0.375), 12);
    expect(regressionMetrics(y, p)).toEqual({
      kind: 'regression',
      rows: 4,
      rmse: Math.sqrt(0.375),
      mae: 0.5,
    });
  });

  it('refuse mismatched or empty inputs', () => {
    expect(() => mae([1, 2], [1])).toThrow(/length mismatch/);
    expect(() => rmse([], [])).toThrow(/at least one row/);
  });
});
