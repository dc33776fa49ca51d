/**
 * The shadow runner in isolation, with scripted sessions: the agreement rule for classifiers and
 * regressors, the sampled share, drops when the bounded queue is full (never waiting), candidate failures,
 * per-window statistics, and latency timed like for like for both models.
 */
import { describe, expect, it, vi } from 'vitest';
import type { LoadedModel, OutputTensor } from '../../../../agent/runtime/ort.js';
import { agrees, ShadowRunner } from '../../../../agent/runtime/shadow.js';
import { bucketOf, countOf } from '../../../../shared/histogram.js';

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
/** The active model's session: the runner runs it again on mirrored inputs to time it. */
const ACTIVE_SESSION = candidate(() => out([1, 0], [1, 2]));
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
    for (let i = 0; i < 8; i++) runner.offer(ACTIVE, ACTIVE_SESSION, feeds, { y: out([1, 0], [1, 2]) }, 'y');
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
    for (let i = 0; i < 10; i++) runner.offer(ACTIVE, ACTIVE_SESSION, feeds, { y: out([1, 0], [1, 2]) }, 'y');
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
    runner.offer(ACTIVE, ACTIVE_SESSION, feeds, { y: out([1], [1, 1]) }, 'y');
    runner.offer({ name: 'm', version: 2 }, ACTIVE_SESSION, feeds, { y: out([1], [1, 1]) }, 'y');
    expect(runner.takeStats()).toEqual([]);
    expect(runner.take({ name: 'm', version: 3 })).toBeUndefined();
    expect(runner.take({ name: 'm', version: 2 })).toBe(c);
    expect(runner.get('m')).toBeUndefined();
  });

  it('a window whose mirrors were all dropped still reports them', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const runner = new ShadowRunner({ capacity: 1, random: () => 0, now: () => 0 });
    runner.set({
      model: { name: 'm', version: 2 },
      loaded: candidate(() => out([1, 0], [1, 2]), gate),
      percent: 100,
      output: 'y',
    });
    for (let i = 0; i < 5; i++) runner.offer(ACTIVE, ACTIVE_SESSION, feeds, { y: out([1, 0], [1, 2]) }, 'y');
    // Nothing compared yet in this window: it must still say what was mirrored and dropped, and for whom.
    expect(runner.takeStats()).toEqual([
      expect.objectContaining({ active: ACTIVE, mirrored: 5, dropped: 4, compared: 0 }),
    ]);
    release();
    await runner.idle();
    expect(runner.takeStats()).toEqual([expect.objectContaining({ mirrored: 0, compared: 1 })]);
  });

  it('shadow work waits while an active request is in flight', async () => {
    vi.useFakeTimers();
    try {
      let runs = 0;
      const runner = new ShadowRunner({ capacity: 4, random: () => 0, now: () => 0 });
      runner.set({
        model: { name: 'm', version: 2 },
        loaded: candidate(() => {
          runs++;
          return out([1, 0], [1, 2]);
        }),
        percent: 100,
        output: 'y',
      });
      runner.enter();
      runner.offer(ACTIVE, ACTIVE_SESSION, feeds, { y: out([1, 0], [1, 2]) }, 'y');
      await vi.advanceTimersByTimeAsync(50);
      expect(runs).toBe(0);
      runner.leave();
      await vi.advanceTimersByTimeAsync(5);
      expect(runs).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('times both models on the same input, alternating which runs first', async () => {
    let clock = 0;
    const ran: string[] = [];
    const timedModel = (name: string, ms: number): LoadedModel => ({
      provider: 'cpu',
      skipped: [],
      async run() {
        ran.push(name);
        clock += ms;
        return { y: out([1, 0], [1, 2]) };
      },
      release: async () => undefined,
    });
    const runner = new ShadowRunner({ capacity: 8, random: () => 0, now: () => clock });
    runner.set({
      model: { name: 'm', version: 2 },
      loaded: timedModel('candidate', 2),
      percent: 100,
      output: 'y',
    });
    const active = timedModel('active', 0.25);
    // However long the live request took (batching under load), the comparison uses like-for-like runs.
    for (let i = 0; i < 4; i++) runner.offer(ACTIVE, active, feeds, { y: out([1, 0], [1, 2]) }, 'y');
    await runner.idle();
    expect(ran).toEqual([
      'candidate',
      'active',
      'active',
      'candidate',
      'candidate',
      'active',
      'active',
      'candidate',
    ]);
    const [stats] = runner.takeStats();
    expect(stats!.activeLatencyBuckets[bucketOf(0.25)]).toBe(4);
    expect(stats!.candidateLatencyBuckets[bucketOf(2)]).toBe(4);
  });

  it('an active session switched out meanwhile costs the latency pair, not the comparison', async () => {
    const runner = new ShadowRunner({ capacity: 8, random: () => 0, now: () => 0 });
    runner.set({
      model: { name: 'm', version: 2 },
      loaded: candidate(() => out([1, 0], [1, 2])),
      percent: 100,
      output: 'y',
    });
    const released = candidate(() => new Error('Session already disposed.'));
    runner.offer(ACTIVE, released, feeds, { y: out([1, 0], [1, 2]) }, 'y');
    await runner.idle();
    const [stats] = runner.takeStats();
    expect(stats).toMatchObject({ compared: 1, agreed: 1, errors: 0 });
    expect(countOf(stats!.activeLatencyBuckets)).toBe(0);
    expect(countOf(stats!.candidateLatencyBuckets)).toBe(0);
  });
});
