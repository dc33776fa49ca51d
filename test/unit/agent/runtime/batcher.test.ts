/**
 * Adaptive batching must be invisible to callers: concurrent requests of different sizes get exactly the
 * rows a lone run would give them, in a real ONNX Runtime session.
 */

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MicroBatcher } from '../../../../agent/runtime/batcher.js';
import { type LoadedModel, OrtRuntime } from '../../../../agent/runtime/ort.js';
import { mulberry32, seededMlp } from '../../../../shared/onnx/mlp.js';
import type { TensorSpec } from '../../../../shared/tensors.js';
import { TEST_CPU_PROFILE } from '../../../support/profiles.js';

const INPUTS: TensorSpec[] = [{ name: 'input', dtype: 'float32', shape: ['batch', 8] }];
const OUTPUTS: TensorSpec[] = [{ name: 'output', dtype: 'float32', shape: ['batch', 3] }];

function rowsOf(seed: number, rows: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: rows * 8 }, () => rand() * 2 - 1);
}

describe('MicroBatcher', () => {
  let model: LoadedModel;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'batcher-'));
    const path = join(dir, 'm.onnx');
    await writeFile(path, seededMlp({ seed: 3, sizes: [8, 16, 3], softmax: true }));
    model = await new OrtRuntime().load(path, TEST_CPU_PROFILE);
  });
  afterAll(async () => model?.release());

  it('gives every concurrent request exactly its own rows, and does batch them', async () => {
    const batcher = new MicroBatcher(model, INPUTS, OUTPUTS, 64);
    const sizes = [1, 3, 1, 2, 5, 1, 1, 4, 2, 1, 1, 1];
    const requests = sizes.map((rows, i) => ({ rows, data: rowsOf(100 + i, rows) }));
    const alone = await Promise.all(
      requests.map(
        async (r) =>
          (await model.run({ input: { dtype: 'float32', data: r.data, dims: [r.rows, 8] } })).output!,
      ),
    );
    const together = await Promise.all(
      requests.map((r) => batcher.run({ input: { dtype: 'float32', data: r.data, dims: [r.rows, 8] } })),
    );
    expect(batcher.counters.batches).toBeGreaterThan(0);
    together.forEach((out, i) => {
      expect(out.output!.dims).toEqual([sizes[i], 3]);
      const got = Array.from(out.output!.data as Float32Array);
      const want = Array.from(alone[i]!.data as Float32Array);
      for (let j = 0; j < want.length; j++) expect(Math.abs(got[j]! - want[j]!)).toBeLessThanOrEqual(1e-6);
    });
  });

  it('never exceeds maxBatchRows and keeps requests with other trailing dims apart', async () => {
    const batcher = new MicroBatcher(model, INPUTS, OUTPUTS, 4);
    const outs = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        batcher.run({ input: { dtype: 'float32', data: rowsOf(i, 3), dims: [3, 8] } }),
      ),
    );
    // 3 rows each with a cap of 4: no two requests fit together.
    expect(batcher.counters.batches).toBe(0);
    expect(outs.every((o) => o.output!.dims[0] === 3)).toBe(true);
  });

  it('passes models without a symbolic batch dimension straight through', async () => {
    const fixed = new MicroBatcher(model, [{ name: 'input', dtype: 'float32', shape: [1, 8] }], OUTPUTS, 64);
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        fixed.run({ input: { dtype: 'float32', data: rowsOf(i, 1), dims: [1, 8] } }),
      ),
    );
    expect(fixed.counters.batches).toBe(0);
  });

  it('rejects every request of a failing batch, and keeps serving afterwards', async () => {
    const broken: LoadedModel = { ...model, run: async () => Promise.reject(new Error('boom')) };
    const batcher = new MicroBatcher(broken, INPUTS, OUTPUTS, 64);
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, (_, i) =>
        batcher.run({ input: { dtype: 'float32', data: rowsOf(i, 1), dims: [1, 8] } }),
      ),
    );
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    const healthy = new MicroBatcher(model, INPUTS, OUTPUTS, 64);
    const ok = await healthy.run({ input: { dtype: 'float32', data: rowsOf(1, 1), dims: [1, 8] } });
    expect(ok.output!.dims).toEqual([1, 3]);
  });
});
