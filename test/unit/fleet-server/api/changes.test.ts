/**
 * The change feed's coalescing, on fake timers: the first change of a thing is told at once, a burst within
 * the window becomes one more signal at its end (so the last state is never missed), things are coalesced
 * apart, and nothing is kept while nobody listens.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Change, ChangeFeed, COALESCE_MS } from '../../../../fleet-server/api/changes.js';

describe('ChangeFeed', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('tells the first change at once and a burst after it once, at the end of the window', () => {
    const feed = new ChangeFeed();
    const seen: Change[] = [];
    feed.subscribe((c) => seen.push(c));
    feed.publish('rollout', 'ro-1');
    expect(seen).toEqual([{ kind: 'rollout', id: 'ro-1' }]);
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(20);
      feed.publish('rollout', 'ro-1');
    }
    expect(seen).toHaveLength(1);
    vi.advanceTimersByTime(COALESCE_MS - 200);
    expect(seen).toHaveLength(2);
    // The trailing signal opened a window of its own; a quiet one ends without a signal.
    vi.advanceTimersByTime(COALESCE_MS * 4);
    expect(seen).toHaveLength(2);
    feed.publish('rollout', 'ro-1');
    expect(seen).toHaveLength(3);
  });

  it('coalesces per kind and id', () => {
    const feed = new ChangeFeed();
    const seen: Change[] = [];
    feed.subscribe((c) => seen.push(c));
    feed.publish('rollout', 'a');
    feed.publish('rollout', 'b');
    feed.publish('device', 'a');
    feed.publish('training-run', 'a');
    feed.publish('rollout', 'a');
    expect(seen).toEqual([
      { kind: 'rollout', id: 'a' },
      { kind: 'rollout', id: 'b' },
      { kind: 'device', id: 'a' },
      { kind: 'training-run', id: 'a' },
    ]);
    vi.advanceTimersByTime(COALESCE_MS);
    expect(seen.at(-1)).toEqual({ kind: 'rollout', id: 'a' });
    expect(seen).toHaveLength(5);
  });

  it('keeps no timers while nobody listens, and stops telling a listener that left', () => {
    const feed = new ChangeFeed();
    feed.publish('device', 'd');
    expect(vi.getTimerCount()).toBe(0);
    const seen: Change[] = [];
    const unsubscribe = feed.subscribe((c) => seen.push(c));
    feed.publish('device', 'd');
    unsubscribe();
    vi.advanceTimersByTime(COALESCE_MS);
    feed.publish('device', 'e');
    expect(seen).toEqual([{ kind: 'device', id: 'd' }]);
  });
});
