/** Seeded synthetic datasets for the training tests. */

import type { TrainingJobInput } from '../../../../fleet-server/training/job.js';
import { mulberry32 } from '../../../../shared/onnx/mlp.js';

/**
 * 3-class classification, `n` rows × 8 features. Features have very different scales and offsets (up to
 * a mean of 1000), so standardization matters and folding-style cancellation would show.
 */
export function classificationData(n = 2000, seed = 1): Omit<TrainingJobInput, 'config'> {
  const d = 8;
  const r = mulberry32(seed);
  const features = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) {
      const z = r() * 2 - 1;
      features[i * d + j] = z * (j + 1) + (j % 2 === 0 ? 1000 : -3) * j;
      s += z * (j % 2 === 0 ? 1 : -1);
    }
    labels[i] = s > 0.6 ? 2 : s < -0.6 ? 0 : 1;
  }
  return {
    features,
    labels,
    ids: Array.from({ length: n }, (_, i) => `device-${i}`),
    featureNames: Array.from({ length: d }, (_, j) => `f${j}`),
    classes: ['low', 'mid', 'high'],
  };
}

/** Regression: a smooth function of 6 features plus a little noise. */
export function regressionData(n = 1500, seed = 2): Omit<TrainingJobInput, 'config'> {
  const d = 6;
  const r = mulberry32(seed);
  const features = new Float32Array(n * d);
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let y = 0;
    for (let j = 0; j < d; j++) {
      const z = r() * 2 - 1;
      features[i * d + j] = 50 + 10 * z;
      y += Math.sin(z * (j + 1)) * (j + 1);
    }
    labels[i] = y + (r() - 0.5) * 0.1;
  }
  return {
    features,
    labels,
    ids: Array.from({ length: n }, (_, i) => `reading-${i}`),
    featureNames: Array.from({ length: d }, (_, j) => `x${j}`),
  };
}

/** Targets that are pure noise: a large network can only overfit, so the holdout loss turns up. */
export function noiseData(n = 300, seed = 3): Omit<TrainingJobInput, 'config'> {
  const d = 8;
  const r = mulberry32(seed);
  return {
    features: Float32Array.from({ length: n * d }, () => r() * 2 - 1),
    labels: Float32Array.from({ length: n }, () => r() * 2 - 1),
    ids: Array.from({ length: n }, (_, i) => `noise-${i}`),
    featureNames: Array.from({ length: d }, (_, j) => `n${j}`),
  };
}

/** A deep copy, for jobs that transfer (detach) their input's buffers. */
export function copyInput<T extends Omit<TrainingJobInput, 'config'>>(input: T): T {
  return { ...input, features: input.features.slice(), labels: input.labels.slice() };
}
