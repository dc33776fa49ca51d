/**
 * Tensor vocabulary shared by manifests, the fleet's model registry and the agent's inference API.
 * Element types are named as ONNX Runtime names them (`float32`, `int64`…); Open Inference Protocol v2
 * names (`FP32`, `INT64`…) are mapped at the API edge. Dimensions are positive integers or symbolic names
 * (a string such as `batch`), which match any positive size.
 */
import { z } from 'zod';

export const DTYPES = [
  'float32',
  'float64',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'int64',
  'bool',
] as const;
export type DType = (typeof DTYPES)[number];
export const DTypeSchema = z.enum(DTYPES);

/** Open Inference Protocol v2 datatype names, by ONNX Runtime dtype. */
export const OIP_DATATYPE: Record<DType, string> = {
  float32: 'FP32',
  float64: 'FP64',
  int8: 'INT8',
  uint8: 'UINT8',
  int16: 'INT16',
  uint16: 'UINT16',
  int32: 'INT32',
  int64: 'INT64',
  bool: 'BOOL',
};

export const DTYPE_OF_OIP: Readonly<Record<string, DType>> = Object.fromEntries(
  Object.entries(OIP_DATATYPE).map(([dtype, oip]) => [oip, dtype as DType]),
);

export const DimSchema = z.union([z.number().int().positive(), z.string().min(1).max(64)]);
export type Dim = z.infer<typeof DimSchema>;

export const TensorSpecSchema = z.object({
  name: z.string().min(1).max(256),
  dtype: DTypeSchema,
  shape: z.array(DimSchema).max(16),
});
export type TensorSpec = z.infer<typeof TensorSpecSchema>;

/** A concrete tensor with flat row-major data, as carried in golden I/O and OIP requests. */
export const TensorValueSchema = z.object({
  name: z.string().min(1).max(256),
  dtype: DTypeSchema,
  shape: z.array(z.number().int().nonnegative()).max(16),
  data: z.array(z.union([z.number(), z.boolean()])),
});
export type TensorValue = z.infer<typeof TensorValueSchema>;

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Why `shape` does not fit `spec`, or null when it fits. Symbolic dims accept any positive size. */
export function shapeMismatch(spec: readonly Dim[], shape: readonly number[]): string | null {
  if (spec.length !== shape.length) {
    return `expected rank ${spec.length} [${formatDims(spec)}], got rank ${shape.length} [${shape.join(', ')}]`;
  }
  for (let i = 0; i < spec.length; i++) {
    const want = spec[i]!;
    const got = shape[i]!;
    if (typeof want === 'number' ? got !== want : got < 1) {
      return `dimension ${i} must be ${typeof want === 'number' ? want : `${want} (any positive size)`}, got ${got} (expected [${formatDims(spec)}], got [${shape.join(', ')}])`;
    }
  }
  return null;
}

export function formatDims(dims: readonly Dim[]): string {
  return dims.map(String).join(', ');
}

/** Whether every value of two flat arrays agrees within |a-b| <= abs + rel*|b|. Returns the worst index or -1. */
export function worstMismatch(
  actual: ArrayLike<number | boolean | bigint>,
  expected: ArrayLike<number | boolean | bigint>,
  tolerance: { abs: number; rel: number },
): number {
  if (actual.length !== expected.length) return 0;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = Number(actual[i]);
    const b = Number(expected[i]);
    const excess = Math.abs(a - b) - (tolerance.abs + tolerance.rel * Math.abs(b));
    if (Number.isNaN(a) !== Number.isNaN(b) || excess > worstExcess) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Number.POSITIVE_INFINITY : excess;
    }
  }
  return worst;
}

/** The typed arrays ONNX Runtime takes, by element type (bool travels as uint8). */
export type TypedData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | BigInt64Array;

export function typedArrayFor(dtype: DType, length: number): TypedData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(length);
    case 'float64':
      return new Float64Array(length);
    case 'int8':
      return new Int8Array(length);
    case 'uint8':
    case 'bool':
      return new Uint8Array(length);
    case 'int16':
      return new Int16Array(length);
    case 'uint16':
      return new Uint16Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'int64':
      return new BigInt64Array(length);
  }
}

/** JSON values (numbers, booleans) into the typed array for `dtype`; int64 values are truncated to integers. */
export function toTypedData(dtype: DType, values: readonly (number | boolean)[]): TypedData {
  const out = typedArrayFor(dtype, values.length);
  if (out instanceof BigInt64Array) {
    for (let i = 0; i < values.length; i++) out[i] = BigInt(Math.trunc(Number(values[i])));
  } else {
    for (let i = 0; i < values.length; i++) out[i] = Number(values[i]);
  }
  return out;
}

/** Tensor data as JSON-safe numbers (int64 → number, exact up to 2^53). */
export function toJsonNumbers(data: ArrayLike<number | bigint | boolean>): number[] {
  const out = new Array<number>(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}
