/**
 * The exported ONNX against real ONNX Runtime: standardization lives inside the graph, parity with TF.js
 * holds within 1e-4 for a classifier and a regressor, and a parity break is reported precisely.
 */
import onnxProto from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTf, type Tf } from '../../../../fleet-server/training/backend.js';
import { parseTrainConfig } from '../../../../fleet-server/training/config.js';
import { exportOnnx } from '../../../../fleet-server/training/export.js';
import { runTrainingJob } from '../../../../fleet-server/training/job.js';
import { checkParity, ParityError, runOnnx } from '../../../../fleet-server/training/parity.js';
import { predictTf, selectRows, type TrainResult, train } from '../../../../fleet-server/training/train.js';
import { encodeMlp } from '../../../../shared/onnx/mlp.js';
import { classificationData, regressionData } from './fixtures.js';

const { onnx } = onnxProto;

let tf: Tf;
let classifier: TrainResult;
const data = classificationData();
beforeAll(async () => {
  ({ tf } = await loadTf('wasm'));
  classifier = await train({
    tf,
    ...data,
    config: parseTrainConfig({ kind: 'classification', hidden: [16, 16], epochs: 3, batchSize: 64 }),
  });
});

const names = { input: 'features', output: 'probabilities' };

describe('exportOnnx', () => {
  it('names input/output, keeps the batch dimension symbolic and standardizes with Sub/Div', () => {
    const exported = exportOnnx(classifier.model);
    expect(exported.inputSpec).toEqual({ name: 'features', dtype: 'float32', shape: ['batch', 8] });
    expect(exported.outputSpec).toEqual({ name: 'probabilities', dtype: 'float32', shape: ['batch', 3] });
    const graph = onnx.ModelProto.decode(exported.onnx).graph!;
    expect(graph.node!.map((n) => n.opType)).toEqual([
      'Sub',
      'Div',
      'Gemm',
      'Relu',
      'Gemm',
      'Relu',
      'Gemm',
      'Softmax',
    ]);
    expect(graph.input![0]!.name).toBe('features');
    expect(graph.input![0]!.type!.tensorType!.shape!.dim![0]!.dimParam).toBe('batch');
    expect(graph.output![0]!.name).toBe('probabilities');
  });

  it('feeds raw features to ORT and matches the network on features standardized outside the graph', async () => {
    const { model } = classifier;
    const exported = exportOnnx(model);
    const raw = data.features.subarray(0, 200 * 8);
    const { mean, std } = model.standardization;
    const standardized = raw.map((v, i) => (v - mean[i % 8]!) / std[i % 8]!);
    const bare = encodeMlp({ layers: model.layers, softmax: true, inputName: 'x', outputName: 'y' });
    const expected = await runOnnx(bare, standardized, 8, { input: 'x', output: 'y' });
    const actual = await runOnnx(exported.onnx, raw, 8, names);
    let maxDiff = 0;
    for (let i = 0; i < expected.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    // Without standardization the same network gives other outputs: the check above is not vacuous.
    const unstandardized = await runOnnx(bare, raw, 8, { input: 'x', output: 'y' });
    expect(Math.max(...unstandardized.map((v, i) => Math.abs(v - expected[i]!)))).toBeGreaterThan(0.1);
  });
});

describe('parity', () => {
  it('classifier: ORT on raw holdout features matches TF.js within 1e-4', async () => {
    const { model, split } = classifier;
    const x = selectRows(data.features, 8, split.holdout);
    const result = await checkParity({
      onnx: exportOnnx(model).onnx,
      features: x,
      d: 8,
      tfOutputs: predictTf(tf, model, x),
      names,
    });
    expect(result.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    expect(result.onnxOutputs.length).toBe(split.holdout.length * 3);
  });

  it('regressor job: parity within 1e-4, output `prediction`, metrics on the holdout', async () => {
    const job = await runTrainingJob({
      ...regressionData(),
      backend: 'wasm',
      config: {
        kind: 'regression',
        hidden: [16, 16],
        activation: 'tanh',
        epochs: 4,
        batchSize: 64,
        optimizer: { learningRate: 0.01 },
      },
    });
    expect(job.parityMaxAbsDiff).toBeLessThanOrEqual(1e-4);
    expect(job.outputSpec).toEqual({ name: 'prediction', dtype: 'float32', shape: ['batch', 1] });
    expect(job.metrics).toMatchObject({ kind: 'regression', rows: job.holdoutRows });
    const ops = onnx.ModelProto.decode(job.onnx).graph!.node!.map((n) => n.opType);
    expect(ops).toEqual(['Sub', 'Div', 'Gemm', 'Tanh', 'Gemm', 'Tanh', 'Gemm']);
  });

  it('fails with the max diff, its index and both values', async () => {
    const { model, split } = classifier;
    const x = selectRows(data.features, 8, split.holdout);
    const tfOutputs = predictTf(tf, model, x);
    const original = tfOutputs[7]!;
    tfOutputs[7] = original + 0.01;
    const failure = checkParity({ onnx: exportOnnx(model).onnx, features: x, d: 8, tfOutputs, names });
    await expect(failure).rejects.toBeInstanceOf(ParityError);
    await expect(failure).rejects.toThrow(
      /max abs diff 0\.0\d+ > 0\.0001 at index 7 \(row 2, output 1\): onnx=0\.\d+, tfjs=/,
    );
  });
});

describe('runTrainingJob', () => {
  const config = {
    kind: 'classification' as const,
    hidden: [16, 16],
    epochs: 3,
    batchSize: 64,
    dropout: 0.1,
  };
  it('gives identical ONNX bytes and metrics when re-run with the same data, config and seed', async () => {
    const a = await runTrainingJob({ ...classificationData(1000), backend: 'wasm', config });
    const b = await runTrainingJob({ ...classificationData(1000), backend: 'wasm', config });
    expect(Buffer.from(b.onnx).equals(Buffer.from(a.onnx))).toBe(true);
    expect(b.metrics).toEqual(a.metrics);
    expect(b.history).toEqual(a.history);
    expect(b.referenceStats).toEqual(a.referenceStats);
    expect(a.backend).toBe('wasm');
    expect(a.metrics).toMatchObject({ kind: 'classification', rows: a.holdoutRows });
    const c = await runTrainingJob({
      ...classificationData(1000),
      backend: 'wasm',
      config: { ...config, seed: 1 },
    });
    expect(Buffer.from(c.onnx).equals(Buffer.from(a.onnx))).toBe(false);
  });
});
