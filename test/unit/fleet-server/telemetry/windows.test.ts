/**
 * Telemetry windows over a real LevelDB: stamped with the fleet's receive time, aggregated per device and
 * version since a point in time (histograms merged, counts summed), shadow stats of the right candidate
 * only, and old windows pruned.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TelemetryWindows } from '../../../../fleet-server/telemetry/windows.js';
import { bucketOf, emptyBuckets, quantileOf } from '../../../../shared/histogram.js';
import type { TelemetryMessage } from '../../../../shared/protocol/messages.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';

function buckets(values: number[]): number[] {
  const b = emptyBuckets();
  for (const v of values) b[bucketOf(v)]!++;
  return b;
}

function telemetry(
  models: { version: number; requests: number; errors?: number; latencies?: number[] }[],
  shadow: TelemetryMessage['shadow'] = [],
): TelemetryMessage {
  return {
    v: 1,
    type: 'telemetry',
    id: crypto.randomUUID(),
    ts: 0,
    windowMs: 5000,
    models: models.map((m) => ({
      name: 'clf',
      version: m.version,
      executionProvider: 'cpu',
      requests: m.requests,
      errors: m.errors ?? 0,
      latencyMs: { p50: 0, p95: 0, p99: 0 },
      ...(m.latencies ? { latencyBuckets: buckets(m.latencies) } : {}),
    })),
    shadow,
    process: { rssBytes: 0, heapUsedBytes: 0, cpuPercent: 0, uptimeS: 0 },
    device: { loadAvg1: 0, freeMemBytes: 0, totalMemBytes: 0 },
  };
}

describe('TelemetryWindows', () => {
  let store: TempStore;
  const clock = manualClock();
  let windows: TelemetryWindows;

  beforeAll(async () => {
    store = await openTempStore('fleet-telemetry-');
    windows = new TelemetryWindows(store.db.collection('telemetry-windows'), {
      now: clock.now,
      retentionMs: 60_000,
    });
  });
  afterAll(() => store?.close());

  it('aggregates a device’s windows per version since a time, merging latency histograms', async () => {
    await windows.record('dev-a', telemetry([{ version: 1, requests: 10, latencies: [1, 1, 1] }]));
    clock.advance(5000);
    const since = clock.now().getTime();
    await windows.record('dev-a', telemetry([{ version: 2, requests: 4, errors: 1, latencies: [1, 2] }]));
    clock.advance(5000);
    await windows.record('dev-a', telemetry([{ version: 2, requests: 6, latencies: [4, 4, 4] }]));
    await windows.record('dev-b', telemetry([{ version: 1, requests: 3 }]));
    const view = await windows.view(['dev-a', 'dev-b', 'dev-none'], { name: 'clf', version: 2 }, since);
    const a = view.traffic.get('dev-a')!;
    expect([...a.keys()]).toEqual([2]);
    expect(a.get(2)).toMatchObject({ requests: 10, errors: 1 });
    expect(quantileOf(a.get(2)!.latencyBuckets, 0.95)).toBe(4);
    // A device without histograms still counts requests.
    expect(view.traffic.get('dev-b')!.get(1)).toMatchObject({ requests: 3, errors: 0 });
    expect(view.traffic.has('dev-none')).toBe(false);
  });

  it('keeps shadow stats of the rollout’s candidate only', async () => {
    const stats = (version: number) => ({
      active: { name: 'clf', version: 1 },
      candidate: { name: 'clf', version },
      mirrored: 10,
      compared: 9,
      agreed: 8,
      dropped: 1,
      errors: 0,
      activeLatencyBuckets: buckets([1]),
      candidateLatencyBuckets: buckets([2]),
    });
    const since = clock.now().getTime();
    await windows.record('dev-s', telemetry([], [stats(2), stats(3)]));
    await windows.record('dev-s', telemetry([], [stats(2)]));
    const view = await windows.view(['dev-s'], { name: 'clf', version: 2 }, since);
    expect(view.shadow.get('dev-s')).toMatchObject({ compared: 18, agreed: 16, dropped: 2, errors: 0 });
  });

  it('prunes windows older than the retention as new ones arrive', async () => {
    const start = clock.now().getTime();
    for (let i = 0; i < 60; i++) {
      await windows.record('dev-p', telemetry([{ version: 1, requests: 1 }]));
      clock.advance(2000);
    }
    // The 50th write (at start + 98 s) pruned everything older than 60 s before it: writes 0..18.
    const kept = await windows.since('dev-p', 0);
    expect(kept).toHaveLength(41);
    expect(kept[0]!.receivedAt).toBe(start + 38_000);
  });
});
