/**
 * What the fleet learns about an ONNX file before it will sign it: that ONNX Runtime loads it, its inputs
 * and outputs (with symbolic dims), its opset, and golden outputs for the device self-test, computed on
 * deterministic inputs (symbolic dims set to 1) or on the operator's sample input.
 */
import onnxProto from 'onnx-proto';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { z } from 'zod';
import { UnprocessableError, ValidationError } from '../../shared/errors.js';
import type { Golden } from '../../shared/manifest.js';
import { mulberry32 } from '../../shared/onnx/mlp.js';
import {
  DTYPES,
  type DType,
  elementCount,
  type TensorSpec,
  type TensorValue,
  toTypedData,
} from '../../shared/tensors.js';

export const SampleInputSchema = z.object({
  inputs: z
    .array(
      z.object({
        name: z.string().min(1),
        shape: z.array(z.number().int().positive()).max(16),
        data: z.array(z.number()).optional(),
      }),
    )
    .min(1),
});
export type SampleInput = z.infer<typeof SampleInputSchema>;

/** The slice of onnxruntime-node the registry needs; main.ts passes the real module. */
export interface OrtApi {
  InferenceSession: { create(bytes: Uint8Array): Promise<InferenceSession> };
  Tensor: new (
    type: DType,
    data: ArrayLike<number> | ArrayLike<bigint> | ArrayLike<boolean>,
    dims: number[],
  ) => Tensor;
}

export interface Inspection {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  opset: number;
  golden: Golden;
}

const GOLDEN_TOLERANCE = { abs: 1e-5, rel: 1e-4 };

export async function inspectModel(
  ort: OrtApi,
  bytes: Uint8Array,
  sample?: SampleInput,
): Promise<Inspection> {
  const opset = readOpset(bytes);
  let session: InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes);
  } catch (err) {
    throw new ValidationError(`ONNX Runtime cannot load the model: ${(err as Error).message}`, {
      code: 'invalid_model',
    });
  }
  try {
    const inputs = session.inputMetadata.map((m) => specOf(m, 'input'));
    const outputs = session.outputMetadata.map((m) => specOf(m, 'output'));
    const feeds = buildGoldenInputs(inputs, sample);
    let results: InferenceSession.OnnxValueMapType;
    try {
      results = await session.run(
        Object.fromEntries(
          feeds.map((t) => [t.name, new ort.Tensor(t.dtype, toTypedData(t.dtype, t.data), t.shape)]),
        ),
      );
    } catch (err) {
      const symbolic = inputs.filter((i) => i.shape.some((d) => typeof d === 'string'));
      if (sample) {
        throw new UnprocessableError(
          `the model failed on the sample input: ${(err as Error).message}`,
          'golden_unavailable',
        );
      }
      const dims = symbolic.map(
        (i) =>
          `${i.name} [${i.shape.join(', ')}] tried as [${feeds.find((f) => f.name === i.name)?.shape.join(', ')}]`,
      );
      throw new UnprocessableError(
        `cannot compute golden outputs: running the model on generated inputs failed (${(err as Error).message}). ` +
          (symbolic.length ? `Symbolic dimensions were set to 1: ${dims.join('; ')}. ` : '') +
          'Pass a sample input with shapes that suit the model (edgefleet models push FILE --sample-input SAMPLE.json).',
        'golden_unavailable',
      );
    }
    const goldenOutputs: TensorValue[] = outputs.map((o) => {
      const t = results[o.name] as Tensor;
      return {
        name: o.name,
        dtype: o.dtype,
        shape: [...t.dims],
        data: Array.from(t.data as ArrayLike<number>, Number),
      };
    });
    return {
      inputs,
      outputs,
      opset,
      golden: { inputs: feeds, outputs: goldenOutputs, tolerance: GOLDEN_TOLERANCE },
    };
  } finally {
    await session.release();
  }
}

function specOf(meta: InferenceSession.ValueMetadata, kind: string): TensorSpec {
  if (!meta.isTensor)
    throw new ValidationError(`${kind} '${meta.name}' is not a tensor; only tensor I/O is supported`, {
      code: 'invalid_model',
    });
  const dtype = meta.type as DType;
  if (!(DTYPES as readonly string[]).includes(dtype)) {
    throw new ValidationError(
      `${kind} '${meta.name}' has element type ${meta.type}, which edgefleet does not serve yet`,
      {
        code: 'invalid_model',
      },
    );
  }
  // ORT reports unknown dims as -1 or as names; a device accepts any positive size for both.
  const shape = meta.shape.map((d, i) =>
    typeof d === 'number' && d > 0 ? d : typeof d === 'string' && d ? d : `dim${i}`,
  );
  return { name: meta.name, dtype, shape };
}

function buildGoldenInputs(inputs: TensorSpec[], sample?: SampleInput): TensorValue[] {
  if (sample) {
    const known = new Set(inputs.map((i) => i.name));
    for (const s of sample.inputs) {
      if (!known.has(s.name))
        throw new ValidationError(
          `sample input names '${s.name}', which the model does not have (inputs: ${[...known].join(', ')})`,
        );
    }
  }
  return inputs.map((spec, index) => {
    const given = sample?.inputs.find((s) => s.name === spec.name);
    if (sample && !given) throw new ValidationError(`sample input lacks model input '${spec.name}'`);
    const shape = given ? given.shape : spec.shape.map((d) => (typeof d === 'number' ? d : 1));
    if (given) {
      if (given.shape.length !== spec.shape.length) {
        throw new ValidationError(
          `sample input '${spec.name}' has rank ${given.shape.length}, the model expects [${spec.shape.join(', ')}]`,
        );
      }
      spec.shape.forEach((d, i) => {
        if (typeof d === 'number' && given.shape[i] !== d) {
          throw new ValidationError(
            `sample input '${spec.name}' dimension ${i} is ${given.shape[i]}, the model fixes it at ${d}`,
          );
        }
      });
    }
    const n = elementCount(shape);
    if (given?.data && given.data.length !== n) {
      throw new ValidationError(
        `sample input '${spec.name}' has ${given.data.length} values, shape [${shape.join(', ')}] needs ${n}`,
      );
    }
    const data = given?.data ?? generated(spec.dtype, n, 0x5eed + index);
    return { name: spec.name, dtype: spec.dtype, shape, data };
  });
}

/** Deterministic values suited to the type: floats in [-1, 1), small non-negative integers, booleans. */
function generated(dtype: DType, n: number, seed: number): number[] {
  const rand = mulberry32(seed);
  if (dtype === 'float32' || dtype === 'float64')
    return Array.from({ length: n }, () => Math.fround(rand() * 2 - 1));
  if (dtype === 'bool') return Array.from({ length: n }, () => (rand() < 0.5 ? 0 : 1));
  return Array.from({ length: n }, () => Math.floor(rand() * 4));
}

function readOpset(bytes: Uint8Array): number {
  let model: InstanceType<typeof onnxProto.onnx.ModelProto>;
  try {
    model = onnxProto.onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ValidationError(`not an ONNX model (protobuf decoding failed: ${(err as Error).message})`, {
      code: 'invalid_model',
    });
  }
  const main = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const version = main?.version === undefined || main.version === null ? 0 : Number(main.version);
  if (!model.graph || !(version > 0)) {
    throw new ValidationError('not an ONNX model (no graph or no default-domain opset)', {
      code: 'invalid_model',
    });
  }
  return version;
}
