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
import { checkParity } from './parity.js';
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
  const metrics =
    model.kind === 'classification'
      ? classificationMetrics(holdoutY, parity.onnxOutputs, model.classes!.length)
      : regressionMetrics(holdoutY, parity.onnxOutputs);

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
