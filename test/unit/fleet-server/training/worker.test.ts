/** The training job in a worker_threads Worker (loaded through tsx) returns what the in-process job does. */
import { describe, expect, it } from 'vitest';
import { runTrainingJob } from '../../../../fleet-server/training/job.js';
import type { EpochProgress } from '../../../../fleet-server/training/train.js';
import { runInWorker, TrainingJobError } from '../../../../fleet-server/training/worker.js';
import { classificationData, copyInput } from './fixtures.js';

describe('runInWorker', () => {
  it('returns the same result as the in-process job, relaying progress', async () => {
    const data = classificationData(800);
    const config = { kind: 'classification' as const, hidden: [8, 8], epochs: 3, batchSize: 64 };
    const local = await runTrainingJob({ ...copyInput(data), backend: 'wasm', config });
    const progress: EpochProgress[] = [];
    const input = { ...copyInput(data), backend: 'wasm' as const, config };
    const remote = await runInWorker(input, (p) => progress.push(p));
    expect(input.features.byteLength).toBe(0); // transferred, not copied
    expect(Buffer.from(remote.onnx).equals(Buffer.from(local.onnx))).toBe(true);
    const { durationMs: _a, onnx: _b, ...restRemote } = remote;
    const { durationMs: _c, onnx: _d, ...restLocal } = local;
    expect(restRemote).toEqual(restLocal);
    expect(progress).toEqual(local.history);
  });

  it('re-raises a failed job with its code and message', async () => {
    const data = classificationData(50);
    const failure = runInWorker({
      ...data,
      labels: data.labels.slice(0, 10),
      backend: 'wasm',
      config: { kind: 'classification' },
    });
    await expect(failure).rejects.toBeInstanceOf(TrainingJobError);
    await expect(failure).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/labels has 10 values, expected 50/),
    });
  });
});
