/**
 * One backend's training throughput, in its own process (a TF.js backend is process-wide): prints one JSON
 * line `{ backend, rows, epochs, samplesPerSecond[] }` or `{ backend, notInstalled, error }`. Run by bench/training.ts.
 */
import { type BackendName, loadTf } from '../fleet-server/training/backend.js';
import { parseTrainConfig } from '../fleet-server/training/config.js';
import { train } from '../fleet-server/training/train.js';
import { mulberry32 } from '../shared/onnx/mlp.js';

const [backend, rowsArg, epochsArg] = process.argv.slice(2) as [BackendName, string, string];
const ROWS = Number(rowsArg);
const EPOCHS = Number(epochsArg);
const D = 32;

try {
  const { tf } = await loadTf(backend);
  // A fixed random linear rule over 32 features, three classes by score tercile-ish thresholds.
  const random = mulberry32(1234);
  const w = Array.from({ length: D }, () => random() * 2 - 1);
  const features = new Float32Array(ROWS * D);
  const labels = new Int32Array(ROWS);
  for (let r = 0; r < ROWS; r++) {
    let score = 0;
    for (let j = 0; j < D; j++) {
      const x = random() * 4 - 2;
      features[r * D + j] = x;
      score += w[j]! * x;
    }
    labels[r] = score < -1 ? 0 : score < 1 ? 1 : 2;
  }
  const config = parseTrainConfig({
    kind: 'classification',
    hidden: [64, 64],
    epochs: EPOCHS,
    batchSize: 256,
    earlyStopping: { patience: 10_000 },
  });
  const marks: number[] = [];
  let trainRows = 0;
  const started = performance.now();
  const result = await train({
    tf,
    features,
    labels,
    ids: Array.from({ length: ROWS }, (_, i) => `row-${i}`),
    featureNames: Array.from({ length: D }, (_, j) => `f${j}`),
    classes: ['low', 'mid', 'high'],
    config,
    onProgress: () => marks.push(performance.now()),
  });
  trainRows = result.split.train.length;
  const perEpoch = marks.map((t, i) => trainRows / ((t - (i === 0 ? started : marks[i - 1]!)) / 1000));
  console.log(
    JSON.stringify({ backend, rows: ROWS, trainRows, epochs: marks.length, samplesPerSecond: perEpoch }),
  );
} catch (err) {
  const message = (err as Error).message;
  // The native backends are optional packages: absent is the normal case, not a failure.
  const notInstalled = /Cannot find (package|module) '@tensorflow\/tfjs-node/.test(message);
  console.log(JSON.stringify({ backend, notInstalled, error: message.split('\n')[0] }));
}
process.exit(0);
