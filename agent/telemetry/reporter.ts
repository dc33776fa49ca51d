/**
 * Periodic telemetry: per serving model the window's requests, errors, latency percentiles and histogram,
 * shadow comparisons of any candidate running beside it, plus the
 * process (RSS, heap, CPU share over the window) and the device (load, memory).
 */
import { freemem, loadavg, totalmem } from 'node:os';
import { PROTOCOL_VERSION, type TelemetryMessage } from '../../shared/protocol/messages.js';
import type { ModelHost } from '../runtime/host.js';
import type { ShadowRunner } from '../runtime/shadow.js';
import type { InferenceStats } from './stats.js';

export function startTelemetry(options: {
  intervalMs: number;
  host: ModelHost;
  stats: InferenceStats;
  /** Shadow comparisons of the window, when candidates run beside active models. */
  shadow?: ShadowRunner;
  publish: (message: TelemetryMessage) => void;
  newId: () => string;
}): { stop(): void } {
  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    const wallMs = now - lastAt;
    lastCpu = process.cpuUsage();
    lastAt = now;
    const memory = process.memoryUsage();
    options.publish({
      v: PROTOCOL_VERSION,
      type: 'telemetry',
      id: options.newId(),
      ts: Date.now(),
      windowMs: Math.max(1, Math.round(wallMs)),
      models: options.host.all().map((m) => ({
        name: m.name,
        version: m.version,
        executionProvider: m.loaded.provider,
        ...options.stats.take(m.name),
      })),
      shadow: options.shadow?.takeStats() ?? [],
      process: {
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        cpuPercent: wallMs > 0 ? ((cpu.user + cpu.system) / 1000 / wallMs) * 100 : 0,
        uptimeS: process.uptime(),
      },
      device: { loadAvg1: loadavg()[0] ?? 0, freeMemBytes: freemem(), totalMemBytes: totalmem() },
    });
  }, options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
