/**
 * The pure parts of training runs (samples → arrays, config resolution against the task) and the
 * champion/challenger evaluation inside a job, with real TF.js and ONNX Runtime.
 */
import { describe, expect, it } from 'vitest';
import { runTrainingJob } from '../../../../fleet-server/training/job.js';
import { resolveConfig, toArrays } from '../../../../fleet-server/training/runs.js';
import type { Sample, Task } from '../../../../shared/pool.js';
import { mlp } from '../../../support/models.js';
import { classificationData } from './fixtures.js';

const task: Task = {
  name: 'quality',
  kind: 'classification',
  features: ['a', 'b'],
  classes: ['fail', 'pass'],
  label: 'label',
  model: 'quality',
  createdAt: '2026-01-01T00:00:00.000Z',
};
const sample = (id: string, features: number[], label: string | number | null): Sample => ({
  id,
  source: 'dev-1',
  features,
  label,
  ts: 1,
});

describe('toArrays', () => {
  it('keeps labeled samples in order, class names as indices in the task’s class order', () => {
    const arrays = toArrays(task, [
      sample('x', [1, 2], 'pass'),
      sample('y', [3, 4], null),
      sample('z', [5, 6], 'fail'),
    ]);
    expect(arrays.ids).toEqual(['x', 'z']);
    expect(Array.from(arrays.features)).toEqual([1, 2, 5, 6]);
    expect(arrays.labels).toBeInstanceOf(Int32Array);
    expect(Array.from(arrays.labels)).toEqual([1, 0]);
  });

  it('regression targets stay numbers; a sample that does not fit the task is refused by id', () => {
    const regression: Task = { ...task, kind: 'regression', classes: undefined };
    const arrays = toArrays(regression, [sample('r', [1, 2], 2.5)]);
    expect(arrays.labels).toBeInstanceOf(Float32Array);
    expect(Array.from(arrays.labels)).toEqual([2.5]);
    expect(() => toArrays(task, [sample('bad', [1, 2], 'melted')])).toThrow(/sample bad does not fit/);
  });
});

describe('resolveConfig', () => {
  it('takes the kind from the task and resolves defaults', () => {
    expect(resolveConfig(task, { epochs: 3 })).toMatchObject({ kind: 'classification', epochs: 3, seed: 42 });
  });
  it.each([
    [{ kind: 'regression' }, /does not match task 'quality'/],
    [{ epochs: 0 }, /epochs/],
    [{ hidden: 'big' }, /hidden/],
    [{ unknownField: 1 }, /unknownField/],
  ])('refuses %j', (raw, message) => {
    expect(() => resolveConfig(task, raw)).toThrow(message);
    try {
      resolveConfig(task, raw);
    } catch (err) {
      expect((err as { code: string }).code).toBe('invalid_config');
    }
  });
});

describe('champion evaluation in a job', () => {
  const data = classificationData(600, 3);
  const config = { kind: 'classification' as const, hidden: [8], epochs: 2 };

  it('scores a compatible champion on the same holdout, identically to the challenger scoring itself', async () => {
    const first = await runTrainingJob({ ...data, config });
    const second = await runTrainingJob({
      ...data,
      config,
      champion: { version: 7, onnx: first.onnx, inputs: [first.inputSpec], outputs: [first.outputSpec] },
    });
    expect(second.champion).toEqual({ version: 7, metrics: first.metrics, reason: null });
  });

  it('reports why an incompatible champion was not compared, without failing the job', async () => {
    const champion = mlp(1, 4); // 32 features → 2 outputs; the task has 8 features
    const result = await runTrainingJob({
      ...data,
      config,
      champion: {
        version: 3,
        onnx: champion,
        inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 32] }],
        outputs: [{ name: 'output', dtype: 'float32', shape: ['batch', 2] }],
      },
    });
    expect(result.champion).toEqual({
      version: 3,
      metrics: null,
      reason: 'not comparable: the champion takes 32 features, the task has 8',
    });
  });
});
