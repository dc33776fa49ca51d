/**
 * The on-device self-test: run the manifest's golden inputs through a freshly loaded model and compare with
 * the golden outputs the fleet computed, within the manifest's tolerance. A model that loads but computes
 * something else (wrong build, corrupted weights, a provider with different numerics) never goes live.
 */
import { EdgefleetError } from '../../shared/errors.js';
import type { Golden } from '../../shared/manifest.js';
import { toTypedData, worstMismatch } from '../../shared/tensors.js';
import type { FeedTensor, LoadedModel } from './ort.js';

/** Runs on the golden inputs after a passed self-test, so the first live requests do not pay the cold start. */
export const WARM_UP_RUNS = 20;

export async function selfTest(model: LoadedModel, golden: Golden): Promise<void> {
  const feeds = goldenFeeds(golden);
  let outputs: Awaited<ReturnType<LoadedModel['run']>>;
  try {
    outputs = await model.run(feeds);
  } catch (err) {
    throw new EdgefleetError(
      'selftest_failed',
      `the model failed on its golden inputs: ${(err as Error).message}`,
    );
  }
  for (const expected of golden.outputs) {
    const actual = outputs[expected.name];
    if (!actual)
      throw new EdgefleetError('selftest_failed', `the model produced no output '${expected.name}'`);
    if (actual.dims.join(',') !== expected.shape.join(',')) {
      throw new EdgefleetError(
        'selftest_failed',
        `output '${expected.name}' has shape [${actual.dims.join(', ')}], golden is [${expected.shape.join(', ')}]`,
      );
    }
    const want = expected.data.map(Number);
    const worst = worstMismatch(actual.data, want, golden.tolerance);
    if (worst >= 0) {
      throw new EdgefleetError(
        'selftest_failed',
        `output '${expected.name}'[${worst}] is ${Number(actual.data[worst])}, golden is ${want[worst]} (tolerance abs ${golden.tolerance.abs}, rel ${golden.tolerance.rel})`,
      );
    }
  }
}

/**
 * Run the golden inputs a few more times: a fresh session's first runs are several times slower (allocation,
 * kernel selection), which would otherwise land on the first live requests — and in a canary's latency gate.
 */
export async function warmUp(model: LoadedModel, golden: Golden, runs = WARM_UP_RUNS): Promise<void> {
  const feeds = goldenFeeds(golden);
  for (let i = 0; i < runs; i++) await model.run(feeds);
}

function goldenFeeds(golden: Golden): Record<string, FeedTensor> {
  const feeds: Record<string, FeedTensor> = {};
  for (const input of golden.inputs) {
    feeds[input.name] = { dtype: input.dtype, data: toTypedData(input.dtype, input.data), dims: input.shape };
  }
  return feeds;
}
