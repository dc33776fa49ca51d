/**
 * Encode a multilayer perceptron as an ONNX model (pure: returns bytes, writes nothing).
 * Graph: input [batch, inFeatures] → (Gemm → activation)* → Gemm → optional Softmax → output.
 * Used by the training exporter and by tests and benchmarks that need a real model ONNX Runtime loads.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type Activation = 'relu' | 'tanh' | 'sigmoid' | 'none';

export interface DenseLayer {
  /** Row-major [inFeatures, outFeatures]. */
  weights: Float32Array;
  bias: Float32Array;
  inFeatures: number;
  outFeatures: number;
  activation: Activation;
}

export interface MlpSpec {
  layers: DenseLayer[];
  inputName?: string;
  outputName?: string;
  /** Append a Softmax over the last axis (classifiers). */
  softmax?: boolean;
  opset?: number;
  docString?: string;
}

const ACTIVATION_OP: Record<Exclude<Activation, 'none'>, string> = {
  relu: 'Relu',
  tanh: 'Tanh',
  sigmoid: 'Sigmoid',
};

export function encodeMlp(spec: MlpSpec): Uint8Array {
  const inputName = spec.inputName ?? 'input';
  const outputName = spec.outputName ?? 'output';
  const nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  const initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  let current = inputName;
  spec.layers.forEach((layer, i) => {
    if (
      layer.weights.length !== layer.inFeatures * layer.outFeatures ||
      layer.bias.length !== layer.outFeatures
    ) {
      throw new RangeError(
        `layer ${i}: weights/bias sizes do not match ${layer.inFeatures}x${layer.outFeatures}`,
      );
    }
    const isLast = i === spec.layers.length - 1;
    initializers.push(floatTensor(`W${i}`, [layer.inFeatures, layer.outFeatures], layer.weights));
    initializers.push(floatTensor(`B${i}`, [layer.outFeatures], layer.bias));
    const gemmOut = isLast && layer.activation === 'none' && !spec.softmax ? outputName : `gemm${i}`;
    nodes.push(
      onnx.NodeProto.create({
        opType: 'Gemm',
        input: [current, `W${i}`, `B${i}`],
        output: [gemmOut],
        name: `gemm${i}`,
      }),
    );
    current = gemmOut;
    if (layer.activation !== 'none') {
      const actOut = isLast && !spec.softmax ? outputName : `act${i}`;
      nodes.push(
        onnx.NodeProto.create({
          opType: ACTIVATION_OP[layer.activation],
          input: [current],
          output: [actOut],
          name: `act${i}`,
        }),
      );
      current = actOut;
    }
  });
  if (spec.softmax) {
    nodes.push(
      onnx.NodeProto.create({
        opType: 'Softmax',
        input: [current],
        output: [outputName],
        name: 'softmax',
        attribute: [
          onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }),
        ],
      }),
    );
  }
  const first = spec.layers[0]!;
  const last = spec.layers[spec.layers.length - 1]!;
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'edgefleet',
    docString: spec.docString ?? '',
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: spec.opset ?? 13 })],
    graph: onnx.GraphProto.create({
      name: 'mlp',
      node: nodes,
      initializer: initializers,
      input: [valueInfo(inputName, ['batch', first.inFeatures])],
      output: [valueInfo(outputName, ['batch', last.outFeatures])],
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** A deterministic MLP with weights from a seeded generator: the same seed gives the same bytes. */
export interface SeededMlpOptions {
  seed: number;
  sizes: number[];
  softmax?: boolean;
  hiddenActivation?: Activation;
}

/** The layers of a seeded MLP (Glorot-uniform weights, small biases), for building variants of one model. */
export function seededLayers(options: Omit<SeededMlpOptions, 'softmax'>): DenseLayer[] {
  const rand = mulberry32(options.seed);
  const layers: DenseLayer[] = [];
  for (let i = 0; i + 1 < options.sizes.length; i++) {
    const inFeatures = options.sizes[i]!;
    const outFeatures = options.sizes[i + 1]!;
    const scale = Math.sqrt(6 / (inFeatures + outFeatures));
    const weights = Float32Array.from({ length: inFeatures * outFeatures }, () => (rand() * 2 - 1) * scale);
    const bias = Float32Array.from({ length: outFeatures }, () => (rand() * 2 - 1) * 0.1);
    const isLast = i + 2 === options.sizes.length;
    layers.push({
      weights,
      bias,
      inFeatures,
      outFeatures,
      activation: isLast ? 'none' : (options.hiddenActivation ?? 'relu'),
    });
  }
  return layers;
}

export function seededMlp(options: SeededMlpOptions): Uint8Array {
  return encodeMlp({ layers: seededLayers(options), softmax: options.softmax ?? false });
}

/** Small, fast, seedable PRNG (mulberry32) returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws (Box–Muller over mulberry32): seeded data for tests, benches and the demo. */
export function seededNormals(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

function floatTensor(name: string, dims: number[], values: Float32Array) {
  return onnx.TensorProto.create({
    name,
    dims,
    dataType: onnx.TensorProto.DataType.FLOAT,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  });
}

function valueInfo(name: string, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) =>
            typeof d === 'number'
              ? onnx.TensorShapeProto.Dimension.create({ dimValue: d })
              : onnx.TensorShapeProto.Dimension.create({ dimParam: d }),
          ),
        }),
      }),
    }),
  });
}
