/**
 * One training job, pure compute over arrays: backend → split → train → export → parity → holdout
 * metrics → reference statistics. No HTTP, storage or messaging; callers persist what it returns.
 * Metrics are computed on ONNX Runtime's outputs: they describe the artifact that ships.
 */
import type { TensorSpec } from '../../shared/tensors.js';
import { type BackendName, loadTf } from './backend.js';
import { parseTrainConfig, type TrainConfigInput } from './config.js';
import { exportOnnx } from './export.js';
import { classificationMetrics, type Metrics, regressionMetrics } from './metrics.js';
import { checkParity, runOnnx } from './parity.js';
import { computeReferenceStats, type ReferenceStats } from './reference-stats.js';
import { type EpochProgress, predictTf, type Standardization, selectRows, train } from './train.js';

export interface TrainingJobInput {
  /** Raw features, row-major [n, d]. */
  features: Float32Array;
  /** Class indices (classification) or targets (regression). */
  labels: Float32Array | Int32Array;
  ids: string[];
  featureNames: string[];
  classes?: string[];
  /** Parsed and defaulted here. */
  config: TrainConfigInput;
  /** Force a TF.js backend (benchmarks, tests); otherwise the best available. */
  backend?: BackendName;
  /** The current production model, evaluated on the same holdout (champion/challenger). */
  champion?: ChampionInput;
  /**
   * Rows that count as recent (1) — e.g. captured since drift began: both models are also scored on the
   * holdout rows among them, the data the challenger was trained to handle.
   */
  recent?: Uint8Array;
}

export interface ChampionInput {
  version: number;
  onnx: Uint8Array;
  /** From its manifest. */
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** The champion's holdout metrics, or why there are none (an incompatible or failing model is not fatal). */
export interface ChampionResult {
  version: number;
  metrics: Metrics | null;
  reason: string | null;
  /** On the recent holdout rows only (when the job was given `recent` and some holdout rows are recent). */
  recentMetrics?: Metrics | null;
}

/** Both models on the recent holdout rows (see `TrainingJobInput.recent`). */
export interface RecentEvaluation {
  rows: number;
  metrics: Metrics;
}

export interface TrainingJobResult {
  onnx: Uint8Array;
  backend: BackendName;
  /** On the holdout split, from the exported model's outputs. */
  metrics: Metrics;
  history: EpochProgress[];
  bestEpoch: number;
  stoppedEarly: boolean;
  referenceStats: ReferenceStats;
  champion: ChampionResult | null;
  /** The challenger on the recent holdout rows; null without `recent` or when none of the holdout is recent. */
  recent: RecentEvaluation | null;
  standardization: Standardization;
  inputSpec: TensorSpec;
  outputSpec: TensorSpec;
  opset: number;
  /** Largest |ONNX − TF.js| over the holdout outputs. */
  parityMaxAbsDiff: number;
  trainRows: number;
  holdoutRows: number;
  durationMs: number;
}

export type ProgressListener = (progress: EpochProgress) => void;

export async function runTrainingJob(
  input: TrainingJobInput,
  onProgress?: ProgressListener,
): Promise<TrainingJobResult> {
  const started = performance.now();
  const config = parseTrainConfig(input.config);
  const { tf, backend } = await loadTf(input.backend);
  const trained = await train({
    tf,
    features: input.features,
    labels: input.labels,
    ids: input.ids,
    featureNames: input.featureNames,
    ...(input.classes ? { classes: input.classes } : {}),
    config,
    ...(onProgress ? { onProgress } : {}),
  });
  const { model, split } = trained;
  const d = model.featureNames.length;
  const exported = exportOnnx(model);

  const holdoutX = selectRows(input.features, d, split.holdout);
  const parity = await checkParity({
    onnx: exported.onnx,
    features: holdoutX,
    d,
    tfOutputs: predictTf(tf, model, holdoutX),
    names: { input: exported.inputSpec.name, output: exported.outputSpec.name },
  });
  const holdoutY = Array.from(split.holdout, (r) => input.labels[r]!);

  const k = model.classes?.length ?? 1;
  const evaluate = (outputs: Float32Array, ys: number[] = holdoutY) =>
    model.kind === 'classification' ? classificationMetrics(ys, outputs, k) : regressionMetrics(ys, outputs);
  // Positions in the holdout of its recent rows, and the metrics over just those.
  const recentAt = input.recent
    ? Array.from(split.holdout, (r, i) => (input.recent![r] ? i : -1)).filter((i) => i >= 0)
    : [];
  const recentY = recentAt.map((i) => holdoutY[i]!);
  const evaluateRecent = (outputs: Float32Array): Metrics | null => {
    if (recentAt.length === 0) return null;
    const picked = new Float32Array(recentAt.length * k);
    for (const [j, i] of recentAt.entries()) picked.set(outputs.subarray(i * k, (i + 1) * k), j * k);
    return evaluate(picked, recentY);
  };
  const champion = input.champion
    ? await evaluateChampion(
        input.champion,
        holdoutX,
        d,
        k,
        evaluate,
        input.recent ? evaluateRecent : undefined,
      )
    : null;
  const metrics = evaluate(parity.onnxOutputs);
  const recentMetrics = evaluateRecent(parity.onnxOutputs);
  const recent = recentMetrics ? { rows: recentAt.length, metrics: recentMetrics } : null;

  const trainX = selectRows(input.features, d, split.train);
  const referenceStats = computeReferenceStats({
    features: trainX,
    featureNames: model.featureNames,
    outputs: predictTf(tf, model, trainX),
    classes: model.classes,
    bins: config.referenceBins,
  });
  return {
    onnx: exported.onnx,
    backend,
    metrics,
    history: trained.history,
    bestEpoch: trained.bestEpoch,
    stoppedEarly: trained.stoppedEarly,
    referenceStats,
    champion,
    recent,
    standardization: model.standardization,
    inputSpec: exported.inputSpec,
    outputSpec: exported.outputSpec,
    opset: exported.opset,
    parityMaxAbsDiff: parity.maxAbsDiff,
    trainRows: split.train.length,
    holdoutRows: split.holdout.length,
    durationMs: performance.now() - started,
  };
}

/**
 * Runs the champion on the challenger's holdout when its interface fits: one float32 input [*, d] and a first
 * output with `k` values per row. Anything else is reported as a reason, not thrown: a champion that cannot be
 * compared must not fail the challenger's training.
 */
async function evaluateChampion(
  champion: ChampionInput,
  holdoutX: Float32Array,
  d: number,
  k: number,
  evaluate: (outputs: Float32Array) => Metrics,
  /** Absent when the job was not asked about recent rows. */
  evaluateRecent: ((outputs: Float32Array) => Metrics | null) | undefined,
): Promise<ChampionResult> {
  const none = (reason: string): ChampionResult => ({ version: champion.version, metrics: null, reason });
  const input = champion.inputs[0];
  const output = champion.outputs[0];
  if (champion.inputs.length !== 1 || !input || input.dtype !== 'float32' || input.shape.length !== 2)
    return none('not comparable: the champion does not take one float32 [batch, features] input');
  if (input.shape[1] !== d)
    return none(`not comparable: the champion takes ${String(input.shape[1])} features, the task has ${d}`);
  if (output?.dtype !== 'float32' || output.shape[output.shape.length - 1] !== k)
    return none(`not comparable: the champion's first output does not have ${k} values per row`);
  if (holdoutX.length === 0) return none('the holdout is empty');
  try {
    const outputs = await runOnnx(champion.onnx, holdoutX, d, { input: input.name, output: output.name });
    if (outputs.length !== (holdoutX.length / d) * k)
      return none(
        `not comparable: the champion gave ${outputs.length} values for ${holdoutX.length / d} rows`,
      );
    return {
      version: champion.version,
      metrics: evaluate(outputs),
      reason: null,
      ...(evaluateRecent ? { recentMetrics: evaluateRecent(outputs) } : {}),
    };
  } catch (err) {
    return none(`the champion failed on the holdout: ${(err as Error).message}`);
  }
}
