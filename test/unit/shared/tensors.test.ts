import { describe, expect, it } from 'vitest';
import {
  DimSchema,
  DTYPE_OF_OIP,
  DTYPES,
  elementCount,
  formatDims,
  OIP_DATATYPE,
  shapeMismatch,
  TensorValueSchema,
  worstMismatch,
} from '../../../shared/tensors.js';

describe('dtype names', () => {
  it('maps every ONNX Runtime dtype to an OIP datatype and back', () => {
    for (const dtype of DTYPES) expect(DTYPE_OF_OIP[OIP_DATATYPE[dtype]]).toBe(dtype);
    expect(new Set(Object.values(OIP_DATATYPE)).size).toBe(DTYPES.length);
    expect(OIP_DATATYPE.float32).toBe('FP32');
    expect(DTYPE_OF_OIP['INT64']).toBe('int64');
    expect(DTYPE_OF_OIP['FP16']).toBeUndefined();
  });
});

describe('shapes', () => {
  it('elementCount multiplies dims (a scalar has one element)', () => {
    expect(elementCount([])).toBe(1);
    expect(elementCount([2, 3, 4])).toBe(24);
    expect(elementCount([0, 5])).toBe(0);
  });

  it('dims are positive integers or symbolic names', () => {
    expect(DimSchema.safeParse(4).success).toBe(true);
    expect(DimSchema.safeParse('batch').success).toBe(true);
    for (const bad of [0, -1, 1.5, '']) expect(DimSchema.safeParse(bad).success).toBe(false);
    expect(formatDims(['batch', 4])).toBe('batch, 4');
  });

  it('shapeMismatch accepts matching shapes, symbolic dims matching any positive size', () => {
    expect(shapeMismatch([2, 4], [2, 4])).toBeNull();
    expect(shapeMismatch(['batch', 4], [17, 4])).toBeNull();
    expect(shapeMismatch([], [])).toBeNull();
  });

  it('shapeMismatch names rank differences', () => {
    expect(shapeMismatch(['batch', 4], [4])).toBe('expected rank 2 [batch, 4], got rank 1 [4]');
  });

  it('shapeMismatch names the first wrong dimension with both shapes', () => {
    expect(shapeMismatch(['batch', 4], [2, 3])).toBe(
      'dimension 1 must be 4, got 3 (expected [batch, 4], got [2, 3])',
    );
    expect(shapeMismatch(['batch', 4], [0, 4])).toBe(
      'dimension 0 must be batch (any positive size), got 0 (expected [batch, 4], got [0, 4])',
    );
  });

  it('tensor values carry concrete non-negative shapes', () => {
    const ok = { name: 'x', dtype: 'float32', shape: [0, 4], data: [] };
    expect(TensorValueSchema.safeParse(ok).success).toBe(true);
    expect(TensorValueSchema.safeParse({ ...ok, shape: ['batch', 4] }).success).toBe(false);
    expect(TensorValueSchema.safeParse({ ...ok, dtype: 'float16' }).success).toBe(false);
  });
});

describe('worstMismatch', () => {
  const tol = { abs: 0.01, rel: 0.1 };

  it('is -1 when every value is within abs + rel * |expected|', () => {
    expect(worstMismatch([1, 2, 3], [1, 2, 3], tol)).toBe(-1);
    // |10.9 - 10| = 0.9 <= 0.01 + 0.1 * 10
    expect(worstMismatch([10.9, -0.005], [10, 0], tol)).toBe(-1);
    expect(worstMismatch([], [], tol)).toBe(-1);
  });

  it('returns the index that exceeds the tolerance by the most', () => {
    // excesses: 0.49, 0, 1.99 → index 2
    expect(worstMismatch([1.5, 2, 5], [1, 2, 3], { abs: 0.01, rel: 0 })).toBe(2);
    expect(worstMismatch([1.5, 2, 3], [1, 2, 3], { abs: 0.01, rel: 0 })).toBe(0);
  });

  it('a length difference is a mismatch at index 0', () => {
    expect(worstMismatch([1, 2], [1, 2, 3], tol)).toBe(0);
  });

  it('NaN against a number is the worst mismatch; NaN against NaN agrees', () => {
    expect(worstMismatch([1, Number.NaN, 3], [1, 2, 3], tol)).toBe(1);
    expect(worstMismatch([1, 2, 3], [1, Number.NaN, 3], tol)).toBe(1);
    // A huge finite error first, NaN later: the NaN still wins.
    expect(worstMismatch([1000, 2, Number.NaN], [1, 2, 3], tol)).toBe(2);
    // NaN first, a huge finite error later: the NaN stays the worst.
    expect(worstMismatch([Number.NaN, 2, 1000], [1, 2, 3], tol)).toBe(0);
    expect(worstMismatch([Number.NaN], [Number.NaN], tol)).toBe(-1);
  });

  it('compares booleans and bigints as numbers', () => {
    expect(worstMismatch([true, false], [1, 0], { abs: 0, rel: 0 })).toBe(-1);
    expect(worstMismatch([3n, 5n], [3, 4], { abs: 0, rel: 0 })).toBe(1);
    expect(worstMismatch(Float32Array.from([0.1]), [0.1], { abs: 1e-6, rel: 0 })).toBe(-1);
  });
});
