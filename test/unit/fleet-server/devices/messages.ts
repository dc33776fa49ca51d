/** Device messages for the registry's tests. */
import type { TelemetryMessage } from '../../../../shared/protocol/messages.js';

/** A telemetry window with no models and nothing notable in it. */
export function quietTelemetry(): TelemetryMessage {
  return {
    v: 1,
    type: 'telemetry',
    id: crypto.randomUUID(),
    ts: 0,
    windowMs: 10_000,
    models: [],
    process: { rssBytes: 1, heapUsedBytes: 1, cpuPercent: 0, uptimeS: 1 },
    device: { loadAvg1: 0, freeMemBytes: 1, totalMemBytes: 2 },
  };
}
