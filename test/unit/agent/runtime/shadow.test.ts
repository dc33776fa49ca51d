/**
 * The shadow runner in isolation, with a scripted candidate: the agreement rule for classifiers and
 * regressors, the sampled share, drops when the bounded queue is full (never waiting), candidate failures,
 * and per-window statistics.
 */
import { describe, expect, it } from 'vitest';
import type { LoadedModel, OutputTensor } from '../../../../agent/runtime/ort.js';
import { agrees, ShadowRunner } from '../../../../agent/runtime/shadow.js';
import { countOf } from '../../../../shared/histogram.js';

const out = (data: number[], dims: number[]): OutputTensor => ({ dtype: 'float32', data, dims });

/** A candidate that answers `reply(call)`; `gate` holds each run until released. */
function candidate(reply: (n: number) => OutputTensor | Error, gate?: Promise<void>): LoadedModel {
  let n = 0;
  return {
    provider: 'cpu',
    skipped: [],
    async run() {
      const r = reply(n++);
      await gate;
      if (r instanceof Error) throw r;
      return { y: r };
    },
    release: async () => undefined,
  };
}

const ACTIVE = { name: 'm', version: 1 };
const feeds = { x: { dtype: 'float32' as const, data: new Float32Array([1]), dims: [1, 1] } };

describe('agrees', () => {
  it.each([
    ['same top-1 per row', out([0.9, 0.1, 0.2, 0.8], [2, 2]), out([0.6, 0.4, 0.4, 0.6], [2, 2]), true],
    ['one row differs', out([0.9, 0.1, 0.2, 0.8], [2, 2]), out([0.6, 0.4, 0.6, 0.4], [2, 2]), false],
    ['regression within tolerance', out([10, -2], [2, 1]), out([10.05, -2.0005], [2, 1]), true],
    ['regression beyond tolerance', out([10, -2], [2, 1]), out([10.2, -2], [2, 1]), false],
    ['different lengths', out([1, 2], [1, 2]), out([1], [1, 1]), false],
  ])('%s', (_, a, c, expected) => {
    expect(agrees(a, c)).toBe(expected);
  });
});

describe('ShadowRunner', () => {
  it('mirrors the sampled share, compares and counts per window', async () => {
    let draw = 0;
    const runner = new ShadowRunner({ capacity: 10, random: () => [0.1, 0.9][draw++ % 2]!, now: () => 0 });
    runner.set({
      model: { name: 'm', version: 2 },
      loaded: candidate((n) =>
        n === 1 ? out([0, 1], [1, 2]) : n === 2 ? new Error('boom') : out([1, 0], [1, 2]),
      ),
      percent: 50,
      output: 'y',
    });
    for (let i = 0; i < 8; i++) runner.offer(ACTIVE, feeds, { y: out([1, 0], [1, 2]) }, 'y', 0.3);
    await runner.idle();
    const [stats] = runner.takeStats();
    expect(stats).toMatchObject({
      active: ACTIVE,
      candidate: { name: 'm', version: 2 },
      mirrored: 4,
      compared: 3,
      agreed: 2,
      errors: 1,
      dropped: 0,
    });
    expect(countOf(stats!.activeLatencyBuckets)).toBe(3);
    expect(runner.takeStats()).toEqual([]); // reset; nothing new in the next window
  });

  it('drops mirrors when the queue is full instead of waiting, and counts them', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const runner = new ShadowRunner({ capacity: 2, random: () => 0, now: () => 0 });
    runner.set({
      model: { name: 'm', version: 2 },
      loaded: candidate(() => out([1, 0], [1, 2]), gate),
      percent: 100,
      output: 'y',
    });
    for (let i = 0; i < 10; i++) runner.offer(ACTIVE, feeds, { y: out([1, 0], [1, 2]) }, 'y', 0.3);
    release();
    await runner.idle();
    const [stats] = runner.takeStats();
    expect(stats!.mirrored).toBe(10);
    expect(stats!.dropped).toBe(8);
    expect(stats!.compared).toBe(2);
  });

  it('mirrors nothing at 0%, nor requests to the candidate’s own version; take stops it', async () => {
    const runner = new ShadowRunner({ capacity: 2, random: () => 0.5, now: () => 0 });
    const c = {
      model: { name: 'm', version: 2 },
      loaded: candidate(() => out([1], [1, 1])),
      percent: 0,
      output: 'y',
    };
    runner.set(c);
    runner.offer(ACTIVE, feeds, { y: out([1], [1, 1]) }, 'y', 1);
    runner.offer({ name: 'm', version: 2 }, feeds, { y: out([1], [1, 1]) }, 'y', 1);
    expect(runner.takeStats()).toEqual([]);
    expect(runner.take({ name: 'm', version: 3 })).toBeUndefined();
    expect(runner.take({ name: 'm', version: 2 })).toBe(c);
    expect(runner.get('m')).toBeUndefined();
  });
});
