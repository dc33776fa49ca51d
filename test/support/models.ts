/**
 * Models and reference outputs for end-to-end tests: real ONNX bytes, and what a direct ONNX Runtime run
 * in the test process returns for them (the oracle agents are compared with).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { type DenseLayer, encodeMlp, mulberry32, seededLayers, seededMlp } from '../../shared/onnx/mlp.js';

export const FEATURES = 32;

/**
 * Whether this onnxruntime-node has its CUDA provider library (installed by its postinstall opt-in). Where it
 * has, profiles asking for CUDA load on CUDA, so tests of the CPU fallback do not apply.
 */
export const ORT_HAS_CUDA = existsSync(
  join(
    dirname(createRequire(import.meta.url).resolve('onnxruntime-node')),
    '../bin/napi-v6',
    process.platform,
    process.arch,
    'libonnxruntime_providers_cuda.so',
  ),
);

export function mlp(seed: number, hidden = 64): Uint8Array {
  return seededMlp({ seed, sizes: [FEATURES, hidden, hidden, 2], softmax: true });
}

export function randomBatch(seed: number, rows: number, features = FEATURES): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: rows * features }, () => rand() * 4 - 2);
}

export async function directRun(model: Uint8Array, data: number[], rows: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  try {
    const out = await session.run({
      input: new ort.Tensor('float32', Float32Array.from(data), [rows, FEATURES]),
    });
    return out['output']!.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** An OIP v2 infer body; `input` is the model's input name (`features` for models the fleet trains). */
export function inferBody(data: number[], rows: number, input = 'input', features = FEATURES) {
  return { inputs: [{ name: input, shape: [rows, features], datatype: 'FP32', data }] };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** A model with symbolic spatial dims that cannot run at 1×1 (3×3 max-pool): golden I/O needs a sample input. */
export function poolModel(): Uint8Array {
  const { onnx } = onnxProto;
  const dim = (d: number | string) =>
    typeof d === 'number'
      ? onnx.TensorShapeProto.Dimension.create({ dimValue: d })
      : onnx.TensorShapeProto.Dimension.create({ dimParam: d });
  const info = (name: string, dims: (number | string)[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({
        tensorType: onnx.TypeProto.Tensor.create({
          elemType: onnx.TensorProto.DataType.FLOAT,
          shape: onnx.TensorShapeProto.create({ dim: dims.map(dim) }),
        }),
      }),
    });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 13 })],
    graph: onnx.GraphProto.create({
      name: 'pool',
      node: [
        onnx.NodeProto.create({
          opType: 'MaxPool',
          input: ['image'],
          output: ['pooled'],
          attribute: [
            onnx.AttributeProto.create({
              name: 'kernel_shape',
              type: onnx.AttributeProto.AttributeType.INTS,
              ints: [3, 3],
            }),
          ],
        }),
      ],
      input: [info('image', [1, 1, 'H', 'W'])],
      output: [info('pooled', [1, 1, 'h', 'w'])],
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The same function as `mlp(seed, hidden)` — bit-for-bit the same outputs — but with `extra` zero units added
 * to every hidden layer, so each request does far more arithmetic: a slower build of an identical model.
 */
export function paddedMlp(seed: number, hidden: number, extra: number): Uint8Array {
  const layers = seededLayers({ seed, sizes: [FEATURES, hidden, hidden, 2] });
  const widen = (layer: DenseLayer, addIn: number, addOut: number): DenseLayer => {
    const inF = layer.inFeatures + addIn;
    const outF = layer.outFeatures + addOut;
    const weights = new Float32Array(inF * outF);
    for (let i = 0; i < layer.inFeatures; i++)
      for (let j = 0; j < layer.outFeatures; j++)
        weights[i * outF + j] = layer.weights[i * layer.outFeatures + j]!;
    const bias = new Float32Array(outF);
    bias.set(layer.bias);
    return { ...layer, weights, bias, inFeatures: inF, outFeatures: outF };
  };
  return encodeMlp({
    layers: [widen(layers[0]!, 0, extra), widen(layers[1]!, extra, extra), widen(layers[2]!, extra, 0)],
    softmax: true,
  });
}
