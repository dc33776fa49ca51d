/**
 * Per-model inference statistics for a telemetry window: request and error counts, a bounded ring of
 * recent latencies (O(1) per request; sorted only when a report is made) for the percentiles, and a
 * fixed-bucket histogram of every latency (shared/histogram.ts), which the fleet merges across devices.
 */
import { bucketOf, emptyBuckets } from '../../shared/histogram.js';

export interface WindowStats {
  requests: number;
  errors: number;
  latencyMs: { p50: number; p95: number; p99: number };
  latencyBuckets: number[];
}

export class ModelStats {
  private requests = 0;
  private errors = 0;
  private readonly ring: Float64Array;
  private filled = 0;
  private next = 0;
  private buckets = emptyBuckets();

  constructor(capacity: number) {
    this.ring = new Float64Array(capacity);
  }

  record(latencyMs: number, ok: boolean): void {
    this.requests++;
    if (!ok) this.errors++;
    this.buckets[bucketOf(latencyMs)]!++;
    this.ring[this.next] = latencyMs;
    this.next = (this.next + 1) % this.ring.length;
    if (this.filled < this.ring.length) this.filled++;
  }

  /** The window's figures; resets the window. */
  take(): WindowStats {
    const sorted = this.ring.slice(0, this.filled).sort();
    const q = (p: number) =>
      sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0;
    const out = {
      requests: this.requests,
      errors: this.errors,
      latencyMs: { p50: q(0.5), p95: q(0.95), p99: q(0.99) },
      latencyBuckets: this.buckets,
    };
    this.buckets = emptyBuckets();
    this.requests = 0;
    this.errors = 0;
    this.filled = 0;
    this.next = 0;
    return out;
  }
}

export class InferenceStats {
  private readonly byModel = new Map<string, ModelStats>();

  constructor(private readonly capacity: number) {}

  record(model: string, latencyMs: number, ok: boolean): void {
    let stats = this.byModel.get(model);
    if (!stats) {
      stats = new ModelStats(this.capacity);
      this.byModel.set(model, stats);
    }
    stats.record(latencyMs, ok);
  }

  take(model: string): WindowStats {
    return (
      this.byModel.get(model)?.take() ?? {
        requests: 0,
        errors: 0,
        latencyMs: { p50: 0, p95: 0, p99: 0 },
        latencyBuckets: emptyBuckets(),
      }
    );
  }
}
