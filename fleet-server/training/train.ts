/**
 * Trains an MLP with TF.js from plain arrays. Invariants:
 * - Standardization statistics come from the training split only (std 0 → 1) and are float32 values,
 *   applied as float32 `(x − mean) / std`: exactly the arithmetic of the exported graph's Sub/Div.
 * - Same data + config + seed on the same backend gives bit-identical weights and history: seeded
 *   initializers, our own seeded shuffle and dropout masks (mulberry32), no TF.js randomness at train time.
 * - The returned weights are those of the epoch with the best holdout loss (always restored, whether or
 *   not training stopped early).
 * Every tensor created here is disposed before returning.
 */
import { UnprocessableError, ValidationError } from '../../shared/errors.js';
import { type Activation, type DenseLayer, mulberry32 } from '../../shared/onnx/mlp.js';
import type { Tf } from './backend.js';
import type { TrainConfig } from './config.js';
import { classificationMetrics, logLoss, type Metrics, mse, regressionMetrics } from './metrics.js';
import { type Split, splitByIds } from './split.js';

type Tensor = import('@tensorflow/tfjs').Tensor;
type Variable = import('@tensorflow/tfjs').Variable;

export interface Standardization {
  /** Per feature, float32-representable. */
  mean: number[];
  /** Per feature, float32-representable, never 0. */
  std: number[];
}

export interface TrainedModel {
  kind: TrainConfig['kind'];
  featureNames: string[];
  /** Class names by index (classification), null for regression. */
  classes: string[] | null;
  standardization: Standardization;
  /** Dense layers on standardized input; the last has activation 'none' (softmax is applied after it). */
  layers: DenseLayer[];
}

export interface EpochProgress {
  /** 1-based. */
  epoch: number;
  /** Mean training loss over the epoch's batches (with dropout, if any). */
  loss: number;
  /** Loss on the holdout split after the epoch (log-loss clipped at 1e-15, or MSE). */
  holdoutLoss: number;
  /** Holdout metrics after the epoch. */
  metrics: Metrics;
}

export interface TrainInput {
  tf: Tf;
  /** Row-major [n, d], raw (un-standardized). */
  features: Float32Array;
  /** Class indices (classification) or targets (regression), one per row. */
  labels: Float32Array | Int32Array;
  /** One per row; decides the train/holdout split. */
  ids: readonly string[];
  featureNames: readonly string[];
  /** Class names by index; defaults to "0".."k-1" with k = max label + 1. */
  classes?: readonly string[];
  config: TrainConfig;
  onProgress?: (progress: EpochProgress) => void;
}

export interface TrainResult {
  model: TrainedModel;
  history: EpochProgress[];
  /** 1-based epoch whose weights were kept. */
  bestEpoch: number;
  stoppedEarly: boolean;
  split: Split;
}

export interface EarlyStoppingState {
  best: number;
  bestEpoch: number;
  /** Epochs since the last improvement. */
  wait: number;
}

/** Pure early-stopping step: did `holdoutLoss` improve on the best by more than minDelta, and stop now? */
export function earlyStoppingStep(
  state: EarlyStoppingState,
  epoch: number,
  holdoutLoss: number,
  options: { patience: number; minDelta: number },
): { state: EarlyStoppingState; improved: boolean; stop: boolean } {
  // NaN never improves; the first finite loss always does (best starts at +Infinity).
  if (holdoutLoss < state.best - options.minDelta) {
    return { state: { best: holdoutLoss, bestEpoch: epoch, wait: 0 }, improved: true, stop: false };
  }
  const wait = state.wait + 1;
  return { state: { ...state, wait }, improved: false, stop: wait >= options.patience };
}

export async function train(input: TrainInput): Promise<TrainResult> {
  const { tf, config } = input;
  const data = prepare(input);
  const { d, k, split } = data;
  const rng = mulberry32(config.seed);
  const sizes = [d, ...config.hidden, k];
  const activations: Activation[] = sizes
    .slice(1)
    .map((_, i) => (i + 2 < sizes.length ? config.activation : 'none'));
  const vars: { W: Variable; b: Variable }[] = [];
  const optimizer =
    config.optimizer.name === 'adam'
      ? tf.train.adam(config.optimizer.learningRate)
      : tf.train.sgd(config.optimizer.learningRate);
  try {
    for (let i = 0; i + 1 < sizes.length; i++) {
      const init = tf.initializers.glorotUniform({ seed: config.seed + i });
      vars.push({
        W: tf.variable(init.apply([sizes[i]!, sizes[i + 1]!]) as Tensor, true, `W${i}`),
        b: tf.variable(tf.zeros([sizes[i + 1]!]), true, `b${i}`),
      });
    }
    const varList = vars.flatMap((v) => [v.W, v.b]);
    const nTrain = split.train.length;
    const batch = Math.min(config.batchSize, nTrain);
    const xBuf = new Float32Array(batch * d);
    const yBuf = new Float32Array(batch * k);
    const history: EpochProgress[] = [];
    let es: EarlyStoppingState = { best: Number.POSITIVE_INFINITY, bestEpoch: 0, wait: 0 };
    let bestWeights: Float32Array[] = [];
    let stoppedEarly = false;
    const order = Int32Array.from({ length: nTrain }, (_, i) => i);
    for (let epoch = 1; epoch <= config.epochs; epoch++) {
      shuffleInPlace(order, rng);
      let lossSum = 0;
      for (let start = 0; start < nTrain; start += batch) {
        const m = Math.min(batch, nTrain - start);
        fillBatch(data, order, start, m, xBuf, yBuf);
        const masks = config.dropout > 0 ? dropoutMasks(config.hidden, m, config.dropout, rng) : null;
        const cost = tf.tidy(() => {
          const xb = tf.tensor2d(xBuf.subarray(0, m * d), [m, d]);
          const yb = tf.tensor2d(yBuf.subarray(0, m * k), [m, k]);
          const maskTensors = masks?.map((mask, i) => tf.tensor2d(mask, [m, config.hidden[i]!]));
          return optimizer.minimize(
            () => {
              const out = forward(tf, vars, activations, xb, maskTensors);
              return config.kind === 'classification'
                ? tf.losses.softmaxCrossEntropy(yb, out)
                : tf.losses.meanSquaredError(yb, out);
            },
            true,
            varList,
          )!;
        });
        lossSum += cost.dataSync()[0]! * m;
        cost.dispose();
      }
      const holdoutOut = forwardRows(tf, vars, activations, data.xHoldout, config.kind === 'classification');
      const progress: EpochProgress = {
        epoch,
        loss: lossSum / nTrain,
        ...holdoutScores(data, holdoutOut),
      };
      history.push(progress);
      input.onProgress?.(progress);
      const step = earlyStoppingStep(es, epoch, progress.holdoutLoss, config.earlyStopping);
      es = step.state;
      if (step.improved) bestWeights = varList.map((v) => Float32Array.from(v.dataSync() as Float32Array));
      if (step.stop) {
        stoppedEarly = epoch < config.epochs;
        break;
      }
    }
    if (es.bestEpoch === 0) {
      throw new UnprocessableError('holdout loss was never finite: training diverged', 'training_diverged');
    }
    const layers: DenseLayer[] = activations.map((activation, i) => ({
      weights: bestWeights[2 * i]!,
      bias: bestWeights[2 * i + 1]!,
      inFeatures: sizes[i]!,
      outFeatures: sizes[i + 1]!,
      activation,
    }));
    return {
      model: {
        kind: config.kind,
        featureNames: [...input.featureNames],
        classes: data.classes,
        standardization: data.standardization,
        layers,
      },
      history,
      bestEpoch: es.bestEpoch,
      stoppedEarly,
      split,
    };
  } finally {
    optimizer.dispose();
    for (const v of vars) {
      v.W.dispose();
      v.b.dispose();
    }
  }
}

/**
 * The trained model's outputs for raw features [n, d] on TF.js: probabilities [n, k] (classification) or
 * predictions [n, 1] (regression). Same arithmetic as the holdout evaluation during training.
 */
export function predictTf(tf: Tf, model: TrainedModel, features: Float32Array): Float32Array {
  const standardized = standardize(features, model.standardization);
  const tensors = model.layers.map((l) => ({
    W: tf.tensor2d(l.weights, [l.inFeatures, l.outFeatures]),
    b: tf.tensor1d(l.bias),
  }));
  try {
    return forwardRows(
      tf,
      tensors,
      model.layers.map((l) => l.activation),
      standardized,
      model.kind === 'classification',
    );
  } finally {
    for (const t of tensors) {
      t.W.dispose();
      t.b.dispose();
    }
  }
}

/** The given rows of a row-major [n, d] matrix, in the order given. */
export function selectRows(features: Float32Array, d: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    out.set(features.subarray(r * d, r * d + d), i * d);
  }
  return out;
}

/** Float32 `(x − mean) / std` per element: what ONNX Runtime's float32 Sub then Div compute. */
export function standardize(features: Float32Array, s: Standardization): Float32Array {
  const d = s.mean.length;
  const out = new Float32Array(features.length);
  for (let i = 0; i < features.length; i++) {
    const j = i % d;
    // Double arithmetic on float32 operands rounded once is the correctly rounded float32 result.
    out[i] = Math.fround(Math.fround(features[i]! - s.mean[j]!) / s.std[j]!);
  }
  return out;
}

/** Mean and population std per feature over `rows` (float64 sums, float32 results; std 0 → 1). */
export function standardization(features: Float32Array, d: number, rows: Int32Array): Standardization {
  const sum = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) sum[j]! += features[r * d + j]!;
  const mean = Array.from(sum, (s) => s / rows.length);
  const sq = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) sq[j]! += (features[r * d + j]! - mean[j]!) ** 2;
  const std = Array.from(sq, (s) => {
    const v = Math.fround(Math.sqrt(s / rows.length));
    return v === 0 || !Number.isFinite(v) ? 1 : v;
  });
  return { mean: mean.map(Math.fround), std };
}

interface Prepared {
  d: number;
  /** Outputs: number of classes, or 1. */
  k: number;
  kind: TrainConfig['kind'];
  classes: string[] | null;
  split: Split;
  standardization: Standardization;
  xTrain: Float32Array;
  yTrain: Float32Array | Int32Array;
  xHoldout: Float32Array;
  yHoldout: Float32Array | Int32Array;
}

function prepare(input: TrainInput): Prepared {
  const { features, labels, ids, featureNames, config } = input;
  const d = featureNames.length;
  const n = ids.length;
  if (d === 0) throw new ValidationError('featureNames is empty');
  if (features.length !== n * d) {
    throw new ValidationError(`features has ${features.length} values, expected ${n} rows × ${d} features`);
  }
  if (labels.length !== n) throw new ValidationError(`labels has ${labels.length} values, expected ${n}`);
  for (let i = 0; i < features.length; i++) {
    if (!Number.isFinite(features[i]!)) {
      throw new ValidationError(
        `feature ${featureNames[i % d]} of row ${Math.floor(i / d)} is ${features[i]}`,
      );
    }
  }
  let k = 1;
  let classes: string[] | null = null;
  if (config.kind === 'classification') {
    let max = -1;
    for (let i = 0; i < n; i++) {
      const y = labels[i]!;
      if (!Number.isInteger(y) || y < 0)
        throw new ValidationError(`label of row ${i} is ${y}, not a class index`);
      max = Math.max(max, y);
    }
    classes = input.classes ? [...input.classes] : Array.from({ length: max + 1 }, (_, c) => String(c));
    if (max >= classes.length) {
      throw new ValidationError(`label ${max} is out of range for ${classes.length} classes`);
    }
    if (classes.length < 2) throw new ValidationError('classification needs at least 2 classes');
    k = classes.length;
  } else {
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(labels[i]!)) throw new ValidationError(`target of row ${i} is ${labels[i]}`);
    }
  }
  const split = splitByIds(ids, config.holdoutFraction);
  if (split.train.length === 0 || split.holdout.length === 0) {
    throw new UnprocessableError(
      `split of ${n} rows at holdoutFraction ${config.holdoutFraction} gave ${split.train.length} train and ${split.holdout.length} holdout rows; both must be non-empty`,
      'training_split_empty',
    );
  }
  const stats = standardization(features, d, split.train);
  const pick = (rows: Int32Array) => {
    const x = selectRows(features, d, rows);
    const y = labels instanceof Int32Array ? new Int32Array(rows.length) : new Float32Array(rows.length);
    rows.forEach((r, i) => {
      y[i] = labels[r]!;
    });
    return { x: standardize(x, stats), y };
  };
  const tr = pick(split.train);
  const ho = pick(split.holdout);
  return {
    d,
    k,
    kind: config.kind,
    classes,
    split,
    standardization: stats,
    xTrain: tr.x,
    yTrain: tr.y,
    xHoldout: ho.x,
    yHoldout: ho.y,
  };
}

function fillBatch(
  data: Prepared,
  order: Int32Array,
  start: number,
  m: number,
  xBuf: Float32Array,
  yBuf: Float32Array,
): void {
  const { d, k } = data;
  if (data.kind === 'classification') yBuf.fill(0, 0, m * k);
  for (let i = 0; i < m; i++) {
    const r = order[start + i]!;
    xBuf.set(data.xTrain.subarray(r * d, r * d + d), i * d);
    if (data.kind === 'classification') yBuf[i * k + data.yTrain[r]!] = 1;
    else yBuf[i] = data.yTrain[r]!;
  }
}

function holdoutScores(data: Prepared, out: Float32Array): { holdoutLoss: number; metrics: Metrics } {
  if (data.kind === 'classification') {
    return {
      holdoutLoss: logLoss(data.yHoldout, out, data.k),
      metrics: classificationMetrics(data.yHoldout, out, data.k),
    };
  }
  return { holdoutLoss: mse(data.yHoldout, out), metrics: regressionMetrics(data.yHoldout, out) };
}

/** Fisher–Yates with the given generator. */
function shuffleInPlace(a: Int32Array, rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}

/** Inverted dropout: kept units are scaled by 1/(1 − rate) so inference needs no change. */
function dropoutMasks(
  hidden: readonly number[],
  m: number,
  rate: number,
  rand: () => number,
): Float32Array[] {
  const keep = 1 / (1 - rate);
  return hidden.map((units) => Float32Array.from({ length: m * units }, () => (rand() < rate ? 0 : keep)));
}

function forward(
  tf: Tf,
  vars: readonly { W: Tensor; b: Tensor }[],
  activations: readonly Activation[],
  x: Tensor,
  masks?: Tensor[],
): Tensor {
  let h = x;
  vars.forEach((v, i) => {
    h = tf.add(tf.matMul(h, v.W), v.b);
    const act = activations[i]!;
    if (act === 'relu') h = tf.relu(h);
    else if (act === 'tanh') h = tf.tanh(h);
    else if (act === 'sigmoid') h = tf.sigmoid(h);
    if (masks && i < masks.length) h = tf.mul(h, masks[i]!);
  });
  return h;
}

const EVAL_CHUNK_ROWS = 8192;

/** Forward pass (no dropout) over standardized rows in fixed-size chunks, softmax for classifiers. */
function forwardRows(
  tf: Tf,
  vars: readonly { W: Tensor; b: Tensor }[],
  activations: readonly Activation[],
  x: Float32Array,
  softmax: boolean,
): Float32Array {
  const d = vars[0]!.W.shape[0]!;
  const k = vars[vars.length - 1]!.W.shape[1]!;
  const n = x.length / d;
  const out = new Float32Array(n * k);
  for (let start = 0; start < n; start += EVAL_CHUNK_ROWS) {
    const m = Math.min(EVAL_CHUNK_ROWS, n - start);
    const chunk = tf.tidy(() => {
      const y = forward(tf, vars, activations, tf.tensor2d(x.subarray(start * d, (start + m) * d), [m, d]));
      return softmax ? tf.softmax(y) : y;
    });
    out.set(chunk.dataSync() as Float32Array, start * k);
    chunk.dispose();
  }
  return out;
}
