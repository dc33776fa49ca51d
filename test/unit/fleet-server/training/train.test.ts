/** Training on the WASM backend: determinism, train-only standardization, early stopping. */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTf, type Tf } from '../../../../fleet-server/training/backend.js';
import { parseTrainConfig, TrainConfigSchema } from '../../../../fleet-server/training/config.js';
import { mse } from '../../../../fleet-server/training/metrics.js';
import { splitByIds } from '../../../../fleet-server/training/split.js';
import {
  earlyStoppingStep,
  predictTf,
  selectRows,
  standardization,
  train,
} from '../../../../fleet-server/training/train.js';
import { classificationData, noiseData } from './fixtures.js';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf('wasm'));
});

const smallClassifier = parseTrainConfig({
  kind: 'classification',
  hidden: [16, 16],
  epochs: 4,
  batchSize: 64,
  dropout: 0.2,
  optimizer: { learningRate: 0.01 },
});

describe('loadTf', () => {
  it('falls back past missing native packages, and a forced missing backend names what failed', async () => {
    const nativeInstalled = await import('@tensorflow/tfjs-node' as string).then(
      () => true,
      () => false,
    );
    const forced = loadTf('tensorflow');
    if (nativeInstalled) await expect(forced).resolves.toMatchObject({ backend: 'tensorflow' });
    else {
      await expect(forced).rejects.toThrow(/tensorflow: .*tfjs-node/);
      expect((await loadTf()).backend).toBe('wasm');
    }
  });
});

describe('config', () => {
  it('resolves defaults once and rejects unknown keys', () => {
    const c = parseTrainConfig({ kind: 'regression' });
    expect(c).toMatchObject({
      hidden: [64, 64],
      activation: 'relu',
      dropout: 0,
      optimizer: { name: 'adam', learningRate: 0.001 },
      epochs: 20,
      batchSize: 256,
      earlyStopping: { patience: 3, minDelta: 0 },
      holdoutFraction: 0.2,
      seed: 42,
    });
    expect(TrainConfigSchema.safeParse({ kind: 'regression', epoch: 3 }).success).toBe(false);
    expect(TrainConfigSchema.safeParse({ kind: 'regression', dropout: 0.95 }).success).toBe(false);
  });
});

describe('train', () => {
  it('gives bit-identical weights and history for the same data, config and seed', async () => {
    const data = classificationData(1200);
    const a = await train({ tf, ...data, config: smallClassifier });
    const b = await train({ tf, ...data, config: smallClassifier });
    expect(b.history).toEqual(a.history);
    expect(b.model.layers.map((l) => [...l.weights])).toEqual(a.model.layers.map((l) => [...l.weights]));
    // and the seed matters: otherwise the comparison above proves nothing
    const c = await train({ tf, ...data, config: { ...smallClassifier, seed: 7 } });
    expect(c.model.layers[0]!.weights).not.toEqual(a.model.layers[0]!.weights);
  });

  it('learns the synthetic classifier and reports progress each epoch', async () => {
    const seen: number[] = [];
    const r = await train({
      tf,
      ...classificationData(1200),
      config: smallClassifier,
      onProgress: (p) => seen.push(p.epoch),
    });
    expect(seen).toEqual(r.history.map((h) => h.epoch));
    const last = r.history[r.bestEpoch - 1]!.metrics;
    expect(last.kind === 'classification' && last.accuracy).toBeGreaterThan(0.8);
  });

  it('standardizes with statistics from the training split only', async () => {
    const data = classificationData(800);
    const { holdout, train: trainRows } = splitByIds(data.ids, 0.2);
    // Wreck the holdout rows' features: train statistics must not move.
    const features = data.features.slice();
    for (const r of holdout) features.fill(1e6, r * 8, r * 8 + 8);
    const result = await train({ tf, ...data, features, config: { ...smallClassifier, epochs: 1 } });
    const expected = standardization(data.features, 8, trainRows);
    expect(result.model.standardization).toEqual(expected);
    const col0 = Array.from(trainRows, (r) => data.features[r * 8]!);
    expect(expected.mean[0]).toBe(Math.fround(col0.reduce((s, v) => s + v, 0) / col0.length));
  });

  it('treats a constant feature as std 1', () => {
    const s = standardization(Float32Array.from([5, 1, 5, 2, 5, 3]), 2, Int32Array.from([0, 1, 2]));
    expect(s).toEqual({ mean: [5, 2], std: [1, Math.fround(Math.sqrt(2 / 3))] });
  });

  it('stops early on a rising holdout loss and restores the best epoch', async () => {
    const data = noiseData();
    const config = parseTrainConfig({
      kind: 'regression',
      hidden: [64, 64],
      epochs: 80,
      batchSize: 16,
      optimizer: { learningRate: 0.01 },
      earlyStopping: { patience: 3 },
    });
    const r = await train({ tf, ...data, config });
    expect(r.stoppedEarly).toBe(true);
    expect(r.history.length).toBeLessThan(config.epochs);
    expect(r.history.length).toBe(r.bestEpoch + config.earlyStopping.patience);
    const losses = r.history.map((h) => h.holdoutLoss);
    expect(Math.min(...losses)).toBe(losses[r.bestEpoch - 1]);
    expect(losses[losses.length - 1]).toBeGreaterThan(losses[r.bestEpoch - 1]!);
    // The returned weights are the best epoch's, not the last epoch's.
    const holdoutX = selectRows(data.features, 8, r.split.holdout);
    const y = Array.from(r.split.holdout, (row) => data.labels[row]!);
    expect(mse(y, predictTf(tf, r.model, holdoutX))).toBe(losses[r.bestEpoch - 1]);
  });
});

describe('earlyStoppingStep', () => {
  const opts = { patience: 2, minDelta: 0.1 };
  it.each([
    { losses: [1, 0.95, 0.93], stopAt: 3, best: 1 },
    { losses: [1, 0.8, 0.85, 0.75, 0.7], stopAt: 4, best: 2 },
    { losses: [1, 0.8, 0.85, 0.65, 0.7, 0.7], stopAt: 6, best: 4 },
    { losses: [Number.NaN, 1, 0.5, 0.45, 0.44], stopAt: 5, best: 3 },
    { losses: [1, 0.5, 0.3], stopAt: null, best: 3 },
  ])('$losses → stop at $stopAt, best $best', ({ losses, stopAt, best }) => {
    let state = { best: Number.POSITIVE_INFINITY, bestEpoch: 0, wait: 0 };
    let stoppedAt: number | null = null;
    for (const [i, loss] of losses.entries()) {
      const step = earlyStoppingStep(state, i + 1, loss, opts);
      state = step.state;
      if (step.stop) {
        stoppedAt = i + 1;
        break;
      }
    }
    expect(stoppedAt).toBe(stopAt);
    expect(state.bestEpoch).toBe(best);
  });
});
