/** shared/onnx/mlp.ts against real ONNX Runtime: the bytes it encodes load and compute what the weights say. */
import * as ort from 'onnxruntime-node';
import { afterEach, describe, expect, it } from 'vitest';
import { type DenseLayer, encodeMlp, mulberry32, seededMlp } from '../../../shared/onnx/mlp.js';

const sessions: ort.InferenceSession[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.release();
});

async function load(bytes: Uint8Array): Promise<ort.InferenceSession> {
  const session = await ort.InferenceSession.create(bytes);
  sessions.push(session);
  return session;
}

async function run(bytes: Uint8Array, rows: number[][], names = { input: 'input', output: 'output' }) {
  const session = await load(bytes);
  const features = rows[0]!.length;
  const out = await session.run({
    [names.input]: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, features]),
  });
  const tensor = out[names.output]!;
  return { dims: tensor.dims, data: [...(tensor.data as Float32Array)] };
}

function dense(
  weights: number[][],
  bias: number[],
  activation: DenseLayer['activation'] = 'none',
): DenseLayer {
  return {
    weights: Float32Array.from(weights.flat()),
    bias: Float32Array.from(bias),
    inFeatures: weights.length,
    outFeatures: weights[0]!.length,
    activation,
  };
}

function expectClose(actual: number[], expected: number[], digits = 5) {
  expect(actual).toHaveLength(expected.length);
  for (const [i, a] of actual.entries()) {
    expect(a, `element ${i}`).toBeCloseTo(expected[i]!, digits);
  }
}

describe('seededMlp', () => {
  it('is deterministic: the same seed gives the same bytes, another seed other bytes', () => {
    const a = seededMlp({ seed: 7, sizes: [4, 8, 3] });
    expect(Buffer.from(seededMlp({ seed: 7, sizes: [4, 8, 3] })).equals(Buffer.from(a))).toBe(true);
    expect(Buffer.from(seededMlp({ seed: 8, sizes: [4, 8, 3] })).equals(Buffer.from(a))).toBe(false);
  });

  it('loads in ONNX Runtime with input [batch, in] and output [batch, out]', async () => {
    const session = await load(seededMlp({ seed: 1, sizes: [32, 64, 64, 2], softmax: true }));
    expect(session.inputNames).toEqual(['input']);
    expect(session.outputNames).toEqual(['output']);
    expect(session.inputMetadata[0]).toMatchObject({
      name: 'input',
      isTensor: true,
      type: 'float32',
      shape: ['batch', 32],
    });
    expect(session.outputMetadata[0]).toMatchObject({
      name: 'output',
      isTensor: true,
      type: 'float32',
      shape: ['batch', 2],
    });
  });

  it('runs any batch size; a softmax head gives rows that sum to 1', async () => {
    const rand = mulberry32(3);
    const rows = Array.from({ length: 5 }, () => Array.from({ length: 32 }, () => rand() * 4 - 2));
    const { dims, data } = await run(seededMlp({ seed: 1, sizes: [32, 16, 2], softmax: true }), rows);
    expect(dims).toEqual([5, 2]);
    for (let r = 0; r < 5; r++) {
      expect(data[2 * r]! + data[2 * r + 1]!).toBeCloseTo(1, 5);
      expect(data[2 * r]!).toBeGreaterThan(0);
    }
  });
});

describe('encodeMlp computes what its weights say', () => {
  it('Gemm with identity weights, bias and ReLU, then a 2→1 layer', async () => {
    const bytes = encodeMlp({
      layers: [
        dense(
          [
            [1, 0],
            [0, 1],
          ],
          [0.5, -1],
          'relu',
        ),
        dense([[2], [1]], [0]),
      ],
    });
    // [1,2] → [1.5, 1] → relu → 2*1.5 + 1 = 4;  [-3,4] → [-2.5, 3] → [0, 3] → 3
    const { dims, data } = await run(bytes, [
      [1, 2],
      [-3, 4],
    ]);
    expect(dims).toEqual([2, 1]);
    expectClose(data, [4, 3]);
  });

  it('row-major [in, out] weights: output j = sum_i x_i * W[i][j] + b_j', async () => {
    const bytes = encodeMlp({
      layers: [
        dense(
          [
            [1, 2, 3],
            [4, 5, 6],
          ],
          [0.1, 0.2, 0.3],
        ),
      ],
    });
    // [1, 1] → [1+4, 2+5, 3+6] + b
    expectClose((await run(bytes, [[1, 1]])).data, [5.1, 7.2, 9.3]);
  });

  it('tanh and sigmoid activations', async () => {
    const identity = [
      [1, 0],
      [0, 1],
    ];
    const tanh = encodeMlp({ layers: [dense(identity, [0, 0], 'tanh')] });
    expectClose((await run(tanh, [[0.5, -2]])).data, [Math.tanh(0.5), Math.tanh(-2)]);
    const sigmoid = encodeMlp({ layers: [dense(identity, [0, 0], 'sigmoid')] });
    expectClose((await run(sigmoid, [[0, 2]])).data, [0.5, 1 / (1 + Math.exp(-2))]);
  });

  it('a softmax head normalises over the last axis', async () => {
    const bytes = encodeMlp({
      layers: [
        dense(
          [
            [1, 0],
            [0, 1],
          ],
          [0, 0],
        ),
      ],
      softmax: true,
    });
    const e = Math.exp(1);
    expectClose(
      (
        await run(bytes, [
          [1, 0],
          [0, 0],
        ])
      ).data,
      [e / (e + 1), 1 / (e + 1), 0.5, 0.5],
    );
  });

  it('uses the given input and output names', async () => {
    const bytes = encodeMlp({ layers: [dense([[2]], [1])], inputName: 'features', outputName: 'score' });
    const session = await load(bytes);
    expect([session.inputNames, session.outputNames]).toEqual([['features'], ['score']]);
    expectClose((await run(bytes, [[3]], { input: 'features', output: 'score' })).data, [7]);
  });

  it('rejects weights or biases of the wrong size, naming the layer', () => {
    const bad = {
      ...dense(
        [
          [1, 0],
          [0, 1],
        ],
        [0, 0],
      ),
      bias: Float32Array.from([0]),
    };
    expect(() => encodeMlp({ layers: [dense([[1]], [0]), bad] })).toThrow(
      new RangeError('layer 1: weights/bias sizes do not match 2x2'),
    );
  });
});

describe('mulberry32', () => {
  it('is seeded, deterministic and stays in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const values = Array.from({ length: 1000 }, () => a());
    expect(values).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(mulberry32(43)()).not.toBe(values[0]);
    // Spread: not stuck in a corner of the interval.
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    expect(mean).toBeGreaterThan(0.4);
    expect(mean).toBeLessThan(0.6);
  });
});
