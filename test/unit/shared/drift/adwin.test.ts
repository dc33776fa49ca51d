/**
 * ADWIN2 against ADWIN0, the exact algorithm it approximates (make_fixtures.py: after every value, every
 * split of the window, the same ε_cut). Up to ADWIN0's first cut both see the same window, and ADWIN2 tests a
 * subset of ADWIN0's splits, so ADWIN2 can never detect earlier, nor at all on a stream where ADWIN0 never
 * does. It detects later by at most:
 *   (clock − 1)  values until its next check, plus
 *   16           values for the nearest bucket boundary to catch up with ADWIN0's best split. Near the newest
 *                end, where a change shows first, buckets are small (sizes 1–8 in the first rows), so the
 *                boundary is a few values off; with clock = 1 we measured at most 8 on these streams
 *                (clock = 32: at most 29 in all), and 16 leaves room without hiding a missed check.
 * After the change both windows keep about the new concept: final widths within 15% (measured at most 11%).
 * Plus the window's statistics against a direct computation, and logarithmic memory.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Adwin, DEFAULT_ADWIN_OPTIONS } from '../../../../shared/drift/adwin.js';
import { mulberry32 } from '../../../../shared/onnx/mlp.js';
import { makeStream, replay, type StreamCheck, type StreamSpec } from './streams.js';

const fixtures = JSON.parse(
  readFileSync(new URL('../../../fixtures/drift/adwin.json', import.meta.url), 'utf8'),
) as {
  delta: number;
  minWindowLength: number;
  cases: {
    name: string;
    stream: StreamSpec;
    check: StreamCheck;
    firstDetection: number | null;
    finalWidth: number;
  }[];
};

const BOUNDARY_SLACK = 16;

function run(values: readonly number[], clock: number) {
  const adwin = new Adwin({ delta: fixtures.delta, minWindowLength: fixtures.minWindowLength, clock });
  const detections: number[] = [];
  values.forEach((x, i) => {
    if (adwin.update(x)) detections.push(i);
  });
  return { adwin, detections };
}

describe('ADWIN2 against ADWIN0', () => {
  it('uses the defaults the fixtures were made with (MOA’s and river’s)', () => {
    expect([fixtures.delta, fixtures.minWindowLength]).toEqual([
      DEFAULT_ADWIN_OPTIONS.delta,
      DEFAULT_ADWIN_OPTIONS.minWindowLength,
    ]);
    expect(new Adwin().options).toEqual({ delta: 0.002, clock: 32, maxBuckets: 5, minWindowLength: 5 });
  });

  describe.each([32, 1])('clock = %i', (clock) => {
    it.each(fixtures.cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
      const { adwin, detections } = run(replay(c.stream, c.check), clock);
      if (c.firstDetection === null) {
        expect(detections).toEqual([]);
        expect(adwin.width).toBe(c.check.length);
        return;
      }
      const first = detections[0];
      expect(first, 'ADWIN2 never detected the change ADWIN0 found').toBeDefined();
      expect(first!).toBeGreaterThanOrEqual(c.firstDetection);
      expect(first! - c.firstDetection).toBeLessThanOrEqual(clock - 1 + BOUNDARY_SLACK);
      expect((first! + 1) % clock).toBe(0); // only at checks
      expect(Math.abs(adwin.width - c.finalWidth)).toBeLessThanOrEqual(0.15 * c.finalWidth);
      expect(adwin.detections).toBe(detections.length);
    });
  });

  it('the fixtures include stationary streams and changes', () => {
    expect(fixtures.cases.filter((c) => c.firstDetection === null).length).toBeGreaterThanOrEqual(3);
    expect(fixtures.cases.filter((c) => c.firstDetection !== null).length).toBeGreaterThanOrEqual(4);
  });
});

describe('Adwin', () => {
  it('keeps the mean and variance of exactly the last `width` values (to 1e-9)', () => {
    const values = makeStream({
      seed: 31,
      segments: [
        { kind: 'normal', n: 1500, from: 0.3, to: 0.3, sd: 0.1 },
        { kind: 'normal', n: 1500, from: 0.9, to: 0.9, sd: 0.3 },
        { kind: 'bernoulli', n: 1500, from: 0.1, to: 0.6 },
      ],
    });
    const adwin = new Adwin({ clock: 4 });
    let shrinks = 0;
    values.forEach((x, i) => {
      if (adwin.update(x)) shrinks++;
      if (i % 7 !== 0 && i !== values.length - 1) return;
      const window = values.slice(i + 1 - adwin.width, i + 1);
      const mean = window.reduce((a, b) => a + b, 0) / window.length;
      const variance = window.reduce((a, b) => a + (b - mean) ** 2, 0) / window.length;
      expect(Math.abs(adwin.mean - mean)).toBeLessThanOrEqual(1e-9);
      expect(Math.abs(adwin.variance - variance)).toBeLessThanOrEqual(1e-9);
    });
    expect(shrinks).toBeGreaterThanOrEqual(2); // the windows compared above did move
    expect(adwin.width).toBeLessThan(1500);
  });

  it('holds at most M·(⌊log₂ width⌋ + 1) buckets: 10⁶ values in about a hundred', () => {
    const adwin = new Adwin();
    const rand = mulberry32(32);
    let most = 0;
    for (let i = 1; i <= 1_000_000; i++) {
      adwin.update(rand());
      if ((i & (i - 1)) === 0 || i % 99_991 === 0) {
        const bound = DEFAULT_ADWIN_OPTIONS.maxBuckets * (Math.floor(Math.log2(adwin.width)) + 1);
        expect(adwin.bucketCount).toBeLessThanOrEqual(bound);
        most = Math.max(most, adwin.bucketCount);
      }
    }
    expect(adwin.detections).toBe(0); // uniform noise: the window keeps everything
    expect(adwin.width).toBe(1_000_000);
    expect(adwin.bucketCount).toBeLessThanOrEqual(5 * 20);
    expect(most).toBeGreaterThan(5 * 10); // and it did grow with the window: the bound is not vacuous
  });

  it('after a change, its mean is the new concept’s', () => {
    const values = makeStream({
      seed: 33,
      segments: [
        { kind: 'bernoulli', n: 3000, from: 0.05, to: 0.05 },
        { kind: 'bernoulli', n: 3000, from: 0.35, to: 0.35 },
      ],
    });
    const { adwin, detections } = run(values, 32);
    expect(detections[0]).toBeGreaterThan(3000);
    expect(adwin.width).toBeLessThanOrEqual(3200);
    expect(Math.abs(adwin.mean - 0.35)).toBeLessThan(0.03);
  });

  it('ignores non-finite values, starts empty and refuses bad options', () => {
    const adwin = new Adwin();
    expect([adwin.width, adwin.mean, adwin.variance, adwin.bucketCount]).toEqual([0, 0, 0, 0]);
    expect(adwin.update(Number.NaN)).toBe(false);
    expect(adwin.width).toBe(0);
    expect(() => new Adwin({ delta: 0 })).toThrow(RangeError);
    expect(() => new Adwin({ clock: 0 })).toThrow(RangeError);
    expect(() => new Adwin({ maxBuckets: 0 })).toThrow(RangeError);
    expect(() => new Adwin({ minWindowLength: 0.5 })).toThrow(RangeError);
  });
});
