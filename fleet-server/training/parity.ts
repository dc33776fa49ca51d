/**
 * Checks that the exported ONNX computes what TF.js computed: runs it on raw features with ONNX Runtime
 * and compares element by element with TF.js's outputs. The ORT session is created and released here.
 */
import * as ort from 'onnxruntime-node';
import { EdgefleetError } from '../../shared/errors.js';

export const PARITY_TOLERANCE = 1e-4;

export class ParityError extends EdgefleetError {
  override readonly name = 'ParityError';
  readonly maxAbsDiff: number;
  constructor(message: string, maxAbsDiff: number) {
    super('onnx_parity_failed', message);
    this.maxAbsDiff = maxAbsDiff;
  }
}

export interface ParityResult {
  maxAbsDiff: number;
  /** ONNX Runtime's outputs, row-major [n, k]. */
  onnxOutputs: Float32Array;
}

/** Run `onnx` on raw `features` [n, d]; ORT's outputs of `outputName`. */
export async function runOnnx(
  onnx: Uint8Array,
  features: Float32Array,
  d: number,
  names: { input: string; output: string },
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(onnx);
  try {
    const n = features.length / d;
    const out = await session.run({ [names.input]: new ort.Tensor('float32', features, [n, d]) });
    const tensor = out[names.output];
    if (!tensor) throw new Error(`ONNX model has no output '${names.output}'`);
    return tensor.data as Float32Array;
  } finally {
    await session.release();
  }
}

/**
 * Throws ParityError when any |onnx − tfjs| exceeds `tolerance`, naming the largest difference, where it
 * is and both values.
 */
export async function checkParity(options: {
  onnx: Uint8Array;
  features: Float32Array;
  d: number;
  tfOutputs: Float32Array;
  names: { input: string; output: string };
  tolerance?: number;
}): Promise<ParityResult> {
  const tolerance = options.tolerance ?? PARITY_TOLERANCE;
  const onnxOutputs = await runOnnx(options.onnx, options.features, options.d, options.names);
  const tfOutputs = options.tfOutputs;
  if (onnxOutputs.length !== tfOutputs.length) {
    throw new ParityError(
      `ONNX gave ${onnxOutputs.length} output values, TF.js ${tfOutputs.length}`,
      Number.POSITIVE_INFINITY,
    );
  }
  let maxAbsDiff = 0;
  let at = -1;
  for (let i = 0; i < tfOutputs.length; i++) {
    const diff = Math.abs(onnxOutputs[i]! - tfOutputs[i]!);
    // `!(diff <= max)` also catches NaN.
    if (!(diff <= maxAbsDiff)) {
      maxAbsDiff = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff;
      at = i;
      if (Number.isNaN(diff)) break;
    }
  }
  if (maxAbsDiff > tolerance) {
    const k = tfOutputs.length / (options.features.length / options.d);
    throw new ParityError(
      `ONNX/TF.js parity failed: max abs diff ${maxAbsDiff} > ${tolerance} at index ${at} (row ${Math.floor(at / k)}, output ${at % k}): onnx=${onnxOutputs[at]}, tfjs=${tfOutputs[at]}`,
      maxAbsDiff,
    );
  }
  return { maxAbsDiff, onnxOutputs };
}
