/** Conversions between JSON numbers and the typed arrays ONNX Runtime takes, per element type. */
import type { DType } from '../../shared/tensors.js';
import type { TypedData } from './ort.js';

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

export function toTypedData(dtype: DType, values: readonly (number | boolean)[]): TypedData {
  const out = typedArrayFor(dtype, values.length);
  if (out instanceof BigInt64Array) {
    for (let i = 0; i < values.length; i++) out[i] = BigInt(Math.trunc(Number(values[i])));
  } else {
    for (let i = 0; i < values.length; i++) out[i] = Number(values[i]);
  }
  return out;
}

/** Output data as JSON-safe numbers (int64 → number; exact up to 2^53). */
export function toJsonNumbers(data: ArrayLike<number | bigint | boolean>): number[] {
  const out = new Array<number>(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}
