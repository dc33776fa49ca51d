/**
 * Encode an MLP whose graph standardizes its own raw input (pure: returns bytes, writes nothing), so a
 * serving path can never preprocess differently from training:
 *   features [batch, d] → Sub(mean) → Div(std) → (Gemm → activation)* → Gemm → Softmax | identity → output
 *
 * Standardization is kept as explicit Sub/Div rather than folded into the first Gemm
 * (W' = W/std, b' = b − (mean/std)·W). Folding saves two elementwise ops over [batch, d] (negligible next to
 * the Gemms) but reorders float32 arithmetic: the folded bias cancels against x·W' and the error grows with
 * |mean|/std. Measured on the training tests' fixture (means up to 6000, std ≈ 2–5): max |ONNX − TF.js|
 * 4.4e-5 folded vs 1.2e-7 with Sub/Div, a third of the 1e-4 parity budget spent on a cosmetic saving.
 * Sub/Div computes exactly the float32 `(x − mean) / std` the trainer fed the network.
 */
import onnxProto from 'onnx-proto';
import { type DenseLayer, encodeMlp } from './mlp.js';

const { onnx } = onnxProto;

export interface StandardizedMlpSpec {
  /** Per input feature; float32-representable values are stored exactly. */
  mean: ArrayLike<number>;
  /** Per input feature, non-zero. */
  std: ArrayLike<number>;
  /** Layers on standardized input; the first takes `mean.length` features. */
  layers: DenseLayer[];
  /** Append a Softmax over the last axis (classifiers). */
  softmax: boolean;
  inputName: string;
  outputName: string;
  opset?: number;
  docString?: string;
}

const STANDARDIZED = 'standardized';

export function encodeStandardizedMlp(spec: StandardizedMlpSpec): Uint8Array {
  const d = spec.mean.length;
  if (spec.std.length !== d || spec.layers[0]?.inFeatures !== d) {
    throw new RangeError(
      `standardization has ${d} means and ${spec.std.length} stds; first layer takes ${spec.layers[0]?.inFeatures}`,
    );
  }
  for (let j = 0; j < d; j++) {
    if (spec.std[j] === 0 || !Number.isFinite(spec.std[j]!) || !Number.isFinite(spec.mean[j]!)) {
      throw new RangeError(`feature ${j}: mean ${spec.mean[j]} / std ${spec.std[j]} cannot standardize`);
    }
  }
  const centred = `${STANDARDIZED}_centred`;
  const inner = onnx.ModelProto.decode(
    encodeMlp({
      layers: spec.layers,
      softmax: spec.softmax,
      inputName: STANDARDIZED,
      outputName: spec.outputName,
      ...(spec.opset === undefined ? {} : { opset: spec.opset }),
      ...(spec.docString === undefined ? {} : { docString: spec.docString }),
    }),
  );
  const graph = inner.graph!;
  graph.initializer = [
    onnx.TensorProto.create({
      name: 'feature_mean',
      dims: [d],
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: float32Bytes(spec.mean),
    }),
    onnx.TensorProto.create({
      name: 'feature_std',
      dims: [d],
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: float32Bytes(spec.std),
    }),
    ...(graph.initializer ?? []),
  ];
  graph.node = [
    onnx.NodeProto.create({
      opType: 'Sub',
      input: [spec.inputName, 'feature_mean'],
      output: [centred],
      name: 'sub_mean',
    }),
    onnx.NodeProto.create({
      opType: 'Div',
      input: [centred, 'feature_std'],
      output: [STANDARDIZED],
      name: 'div_std',
    }),
    ...(graph.node ?? []),
  ];
  graph.input![0]!.name = spec.inputName;
  // A plain, exactly-sized Uint8Array (protobufjs may hand back a pooled Node Buffer slice).
  return Uint8Array.from(onnx.ModelProto.encode(inner).finish());
}

function float32Bytes(values: ArrayLike<number>): Uint8Array {
  const f = Float32Array.from(values);
  return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
}
