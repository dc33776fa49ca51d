/**
 * Page–Hinkley against an independent Python implementation of the same definition (make_fixtures.py computes
 * PHₙ as a maximum over suffix sums, not by the recurrence used here): detection indices equal exactly on
 * seeded loss streams. Plus behaviour: silent on stationary losses and on a decrease, quick on an increase,
 * a fresh start after each detection, fixed memory.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PageHinkley, type PageHinkleyOptions } from '../../../../shared/drift/page-hinkley.js';
import { makeStream, replay, type StreamCheck, type StreamSpec } from './streams.js';

const fixtures = JSON.parse(
  readFileSync(new URL('../../../fixtures/drift/page_hinkley.json', import.meta.url), 'utf8'),
) as {
  defaults: PageHinkleyOptions;
  cases: {
    name: string;
    options: PageHinkleyOptions;
    stream: StreamSpec;
    check: StreamCheck;
    detections: number[];
  }[];
};

function detections(values: readonly number[], options: Partial<PageHinkleyOptions> = {}): number[] {
  const ph = new PageHinkley(options);
  const found: number[] = [];
  values.forEach((x, i) => {
    if (ph.update(x)) found.push(i);
  });
  return found;
}

describe('Page–Hinkley agrees with the Python reference', () => {
  it.each(fixtures.cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    expect(detections(replay(c.stream, c.check), c.options)).toEqual(c.detections);
  });

  it('uses the defaults the fixtures were made with (scikit-multiflow’s and river’s, but alpha = 1)', () => {
    expect(new PageHinkley().options).toEqual(fixtures.defaults);
    expect(fixtures.defaults).toEqual({ delta: 0.005, threshold: 50, minInstances: 30, alpha: 1 });
  });

  it('the fixtures cover silence, one detection and several', () => {
    const counts = fixtures.cases.map((c) => c.detections.length);
    expect(counts).toContain(0);
    expect(counts).toContain(1);
    expect(Math.max(...counts)).toBeGreaterThan(1);
  });
});

describe('PageHinkley', () => {
  const stationary = (seed: number, n: number) =>
    makeStream({ seed, segments: [{ kind: 'normal', n, from: 0.4, to: 0.4, sd: 0.15 }] });

  it('stays silent on long stationary loss streams', () => {
    for (const seed of [1, 2, 3]) expect(detections(stationary(seed, 100_000))).toEqual([]);
  });

  it('detects an increase of the mean loss soon after it happens', () => {
    const values = makeStream({
      seed: 4,
      segments: [
        { kind: 'normal', n: 1000, from: 0.2, to: 0.2, sd: 0.05 },
        { kind: 'normal', n: 1000, from: 0.5, to: 0.5, sd: 0.05 },
      ],
    });
    const found = detections(values);
    // PH gains about 0.3·1000/(1000 + k) − δ per value k after the change: it crosses 50 near k ≈ 190.
    expect(found.length).toBe(1);
    expect(found[0]).toBeGreaterThan(1000);
    expect(found[0]).toBeLessThan(1300);
  });

  it('does not alarm on a decrease (a model getting better)', () => {
    const values = makeStream({
      seed: 5,
      segments: [
        { kind: 'normal', n: 2000, from: 0.8, to: 0.8, sd: 0.1 },
        { kind: 'normal', n: 2000, from: 0.1, to: 0.1, sd: 0.1 },
      ],
    });
    expect(detections(values)).toEqual([]);
  });

  it('keeps its state readable at a detection, then starts afresh', () => {
    const ph = new PageHinkley({ threshold: 3, minInstances: 5 });
    for (let i = 0; i < 10; i++) expect(ph.update(0)).toBe(false);
    let steps = 0;
    while (!ph.update(1)) steps++;
    expect(steps).toBeLessThan(10);
    expect(ph.statistic).toBeGreaterThan(3);
    expect(ph.n).toBe(10 + steps + 1);
    expect(ph.detections).toBe(1);
    expect(ph.update(1)).toBe(false);
    expect([ph.n, ph.mean, ph.statistic]).toEqual([1, 1, 0]);
  });

  it('waits for minInstances values before it can detect', () => {
    const ph = new PageHinkley({ threshold: 0.5, minInstances: 20 });
    const fired: number[] = [];
    for (let i = 0; i < 40; i++) if (ph.update(i < 3 ? 0 : 10)) fired.push(i);
    expect(fired[0]).toBe(19);
  });

  it('with fading (alpha < 1) the statistic stays below (largest increment)/(1 − alpha)', () => {
    // After 100 zeros, ones: each increment 1 − x̄ − δ is below 1 and stays positive for a long while.
    const values = [...new Array<number>(100).fill(0), ...new Array<number>(1000).fill(1)];
    const faded = new PageHinkley({ alpha: 0.9, threshold: 1e9 });
    const plain = new PageHinkley({ threshold: 1e9 });
    let largest = 0;
    for (const x of values) {
      faded.update(x);
      plain.update(x);
      largest = Math.max(largest, faded.statistic);
    }
    expect(largest).toBeLessThanOrEqual(1 / (1 - 0.9));
    expect(plain.statistic).toBeGreaterThan(100); // ≈ Σ 100/(100 + k): without fading it keeps counting
  });

  it('ignores non-finite values and refuses bad options', () => {
    const ph = new PageHinkley();
    expect(ph.update(Number.NaN)).toBe(false);
    expect(ph.n).toBe(0);
    expect(() => new PageHinkley({ alpha: 0 })).toThrow(RangeError);
    expect(() => new PageHinkley({ alpha: 1.5 })).toThrow(RangeError);
    expect(() => new PageHinkley({ threshold: 0 })).toThrow(RangeError);
  });
});
