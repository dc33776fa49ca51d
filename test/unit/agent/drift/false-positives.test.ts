/**
 * False positives: reference statistics computed as training computes them (quantile bins of 2,000 training
 * rows, the model's predictions on them), then held-out rows from the SAME distribution streamed through the
 * device's monitor with its default windows. Every "drift" verdict here is a false alarm; the rate is printed
 * and must stay near zero. Seeded, so the figure is the same on every run.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AgentConfigSchema } from '../../../../agent/config.js';
import { DriftMonitor } from '../../../../agent/drift/monitor.js';
import { ModelHost, type ServingModel } from '../../../../agent/runtime/host.js';
import { computeReferenceStats } from '../../../../fleet-server/training/reference-stats.js';
import { seededNormals } from '../../../../shared/onnx/mlp.js';

const D = 6;
const TRAIN_ROWS = 2_000;

/** Distribution A: mixed shapes (normal, skewed, heavy-tailed, discrete-ish), like real sensor features. */
function rowA(z: () => number): number[] {
  return [z(), Math.exp(z() * 0.5), z() ** 3, Math.round(z() * 2), 10 + z() * 3, Math.abs(z())];
}

/** A fixed "model": class probabilities from a logistic of two features. */
function predict(x: number[]): [number, number] {
  const p = 1 / (1 + Math.exp(-(x[0]! + 0.5 * x[4]! - 5)));
  return [1 - p, p];
}

describe('no drift on held-out data from the reference distribution', () => {
  it('false-alarm rate over many windows stays near zero (printed)', () => {
    const z = seededNormals(11);
    const train = new Float32Array(TRAIN_ROWS * D);
    const outputs = new Float32Array(TRAIN_ROWS * 2);
    for (let r = 0; r < TRAIN_ROWS; r++) {
      const x = rowA(z);
      train.set(x, r * D);
      outputs.set(predict(x), r * 2);
    }
    const reference = computeReferenceStats({
      features: train,
      featureNames: Array.from({ length: D }, (_, j) => `f${j}`),
      outputs,
      classes: ['no', 'yes'],
      bins: 10,
    });
    const host = new ModelHost();
    const model = {
      name: 'm',
      version: 1,
      manifest: { inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', D] }], referenceStats: reference },
      loaded: { release: async () => undefined },
    } as unknown as ServingModel;
    host.swap(model);
    const defaults = AgentConfigSchema.parse({});
    const windows: NonNullable<ReturnType<DriftMonitor['lastWindow']>>[] = [];
    const monitor = new DriftMonitor(host, {
      windowSamples: defaults.driftWindowSamples,
      windowMs: defaults.driftWindowMs,
      reportIntervalMs: Number.MAX_SAFE_INTEGER,
      queueLimit: 1_000_000,
      feedbackMemory: 10,
      drift: { minSamples: defaults.driftMinSamples },
      now: () => 0,
      newId: () => 'x',
      publish: () => undefined,
      log: pino({ level: 'silent' }),
      captureRate: () => 0,
    });
    // Every closed window is read, not only the reports sent at verdict changes.
    const held = seededNormals(12345); // a different seed: held-out rows never seen by the reference
    const WINDOWS = 400;
    for (let w = 0; w < WINDOWS; w++) {
      for (let i = 0; i < defaults.driftWindowSamples; i++) {
        const x = rowA(held);
        monitor.offer(
          model,
          `${w}/${i}`,
          { dtype: 'float32', data: Float32Array.from(x), dims: [1, D] },
          { dtype: 'float32', data: Float32Array.from(predict(x)), dims: [1, 2] },
        );
      }
      monitor.absorbQueued();
      windows.push(monitor.lastWindow('m')!);
    }
    const drift = windows.filter((m) => m.verdict === 'drift').length;
    const featureTests = windows.flatMap((m) => m.features);
    const featureAlarms = featureTests.filter((f) => f.drifted).length;
    const predictionAlarms = windows.filter((m) => m.prediction?.drifted).length;
    console.log(
      `false positives on held-out A: dataset drift in ${drift}/${WINDOWS} windows (${((100 * drift) / WINDOWS).toFixed(2)}%), ` +
        `feature alarms ${featureAlarms}/${featureTests.length} (${((100 * featureAlarms) / featureTests.length).toFixed(2)}%), ` +
        `prediction drift ${predictionAlarms}/${WINDOWS} (${((100 * predictionAlarms) / WINDOWS).toFixed(2)}%)`,
    );
    expect(windows.every((m) => m.window?.samples === defaults.driftWindowSamples)).toBe(true);
    // BH at α = 0.05 per window, drift only when half the features agree: false alarms should be rare.
    expect(drift / WINDOWS).toBeLessThanOrEqual(0.01);
    expect(featureAlarms / featureTests.length).toBeLessThanOrEqual(0.05);
    expect(predictionAlarms / WINDOWS).toBeLessThanOrEqual(0.1);
  });

  it('concept drift: no alarm on a steady error rate over many labels (printed)', () => {
    const host = new ModelHost();
    const model = {
      name: 'm',
      version: 1,
      manifest: {
        inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 1] }],
        referenceStats: {
          schema: 'edgefleet.reference-stats/v1',
          rows: 1000,
          features: [
            { name: 'f', mean: 0, std: 1, min: 0, max: 1, bins: { edges: [0, 1], proportions: [1] } },
          ],
          predictions: { kind: 'classification', classes: ['no', 'yes'], proportions: [0.5, 0.5] },
        },
      },
      loaded: { release: async () => undefined },
    } as unknown as ServingModel;
    host.swap(model);
    let alarms = 0;
    const monitor = new DriftMonitor(host, {
      windowSamples: 1_000_000,
      windowMs: Number.MAX_SAFE_INTEGER,
      reportIntervalMs: Number.MAX_SAFE_INTEGER,
      queueLimit: 10,
      feedbackMemory: 10,
      now: () => 0,
      newId: () => 'x',
      publish: (m) => {
        if (m.concept.drifted) alarms++;
      },
      log: pino({ level: 'silent' }),
      captureRate: () => 0,
    });
    let s = 99;
    const uniform = () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s / 2 ** 32;
    };
    const LABELS = 100_000;
    const output = { dtype: 'float32', data: Float32Array.from([0.3, 0.7]), dims: [1, 2] };
    const input = { dtype: 'float32' as const, data: Float32Array.from([0.5]), dims: [1, 1] };
    for (let i = 0; i < LABELS; i++) {
      monitor.offer(model, `q${i}`, input, output);
      monitor.feedback('m', `q${i}`, uniform() < 0.2 ? 'no' : 'yes'); // a steady 20% error rate
    }
    console.log(
      `concept drift false alarms: ${alarms} in ${LABELS.toLocaleString()} labels at a steady 20% error rate`,
    );
    expect(alarms).toBeLessThanOrEqual(1);
  });
});
