/**
 * The telemetry window as it goes on the wire: valid against the protocol schema, latency percentiles with
 * the same latencies as histogram buckets of shared/histogram.ts, the shadow comparisons of the window, and
 * every counter reset for the next window. Time is faked; the stats, host and shadow runner are the real ones.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ModelHost } from '../../../../agent/runtime/host.js';
import type { LoadedModel, OutputTensor } from '../../../../agent/runtime/ort.js';
import { ShadowRunner } from '../../../../agent/runtime/shadow.js';
import { startTelemetry } from '../../../../agent/telemetry/reporter.js';
import { InferenceStats } from '../../../../agent/telemetry/stats.js';
import { bucketOf, countOf, LATENCY_BUCKETS } from '../../../../shared/histogram.js';
import type { Manifest } from '../../../../shared/manifest.js';
import { type TelemetryMessage, TelemetryMessageSchema } from '../../../../shared/protocol/messages.js';

const out = (data: number[]): OutputTensor => ({ dtype: 'float32', data, dims: [1, 2] });

function loaded(reply: number[]): LoadedModel {
  return {
    provider: 'cpu',
    skipped: [],
    run: async () => ({ y: out(reply) }),
    release: async () => undefined,
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('telemetry reporter', () => {
  it('publishes percentiles, histogram buckets and shadow comparisons per window, then resets', async () => {
    const host = new ModelHost();
    host.swap({ name: 'm', version: 1, slot: 'a', manifest: {} as Manifest, loaded: loaded([1, 0]) });
    const stats = new InferenceStats(64);
    const shadow = new ShadowRunner({ capacity: 8, random: () => 0, now: () => 0 });
    shadow.set({ model: { name: 'm', version: 2 }, loaded: loaded([0, 1]), percent: 100, output: 'y' });
    const published: TelemetryMessage[] = [];
    const telemetry = startTelemetry({
      intervalMs: 1000,
      host,
      stats,
      shadow,
      publish: (m) => published.push(m),
      newId: () => `t${published.length}`,
    });
    const latencies = [0.2, 0.4, 0.4, 3, 12];
    for (const ms of latencies) stats.record('m', ms, true);
    stats.record('m', 80, false);
    const feeds = { x: { dtype: 'float32' as const, data: new Float32Array([1]), dims: [1, 1] } };
    shadow.offer({ name: 'm', version: 1 }, host.get('m')!.loaded, feeds, { y: out([1, 0]) }, 'y');
    await vi.advanceTimersByTimeAsync(1000);
    telemetry.stop();

    expect(published).toHaveLength(1);
    const message = TelemetryMessageSchema.parse(published[0]); // valid on the wire
    const [model] = message.models;
    expect(model).toMatchObject({ name: 'm', version: 1, requests: 6, errors: 1 });
    expect(model!.latencyBuckets).toHaveLength(LATENCY_BUCKETS);
    expect(countOf(model!.latencyBuckets!)).toBe(6);
    for (const ms of [...latencies, 80]) expect(model!.latencyBuckets![bucketOf(ms)]).toBeGreaterThan(0);
    expect(model!.latencyMs.p50).toBe(3);
    expect(message.shadow).toEqual([
      expect.objectContaining({
        active: { name: 'm', version: 1 },
        candidate: { name: 'm', version: 2 },
        mirrored: 1,
        compared: 1,
        agreed: 0, // the candidate picks the other class
      }),
    ]);
    expect(countOf(message.shadow![0]!.activeLatencyBuckets)).toBe(1);

    // The next window starts from zero.
    expect(stats.take('m')).toMatchObject({ requests: 0, errors: 0 });
    expect(countOf(stats.take('m').latencyBuckets)).toBe(0);
    expect(shadow.takeStats()).toEqual([]);
  });
});
