/**
 * Data capture for the fleet's pool: a sampled share of inference requests (rate from config) is kept,
 * row by row (input row, output row), waiting up to `feedbackWindowMs` for ground truth sent by the app
 * (`POST /v2/models/{name}/feedback`); then — labeled or not — it moves to the durable outbox.
 * The waiting room is LevelDB too, so a restart loses nothing captured. The hot path pays one random draw
 * for unsampled requests.
 */
import type { Logger } from 'pino';
import type { CapturedSample, ModelRef } from '../../shared/protocol/messages.js';
import { elementCount } from '../../shared/tensors.js';
import type { FeedTensor, OutputTensor } from '../runtime/ort.js';
import type { Outbox } from './outbox.js';

export interface PendingCapture {
  model: ModelRef;
  requestId: string;
  at: number;
  rows: CapturedSample[];
}

export interface PendingStore {
  get(key: string): Promise<PendingCapture | undefined>;
  put(key: string, value: PendingCapture): Promise<void>;
  del(key: string): Promise<void>;
  values(): Promise<PendingCapture[]>;
}

export type FeedbackLabel = string | number;

const keyOf = (model: string, requestId: string) => `${model}\u0000${requestId}`;

export class Capture {
  /** Requests sampled, for telemetry and tests. */
  readonly counters = { sampled: 0, labeled: 0, expired: 0 };
  /** Captures still being written (off the response path): feedback for one waits for its write. */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    private readonly deps: {
      pending: PendingStore;
      outbox: Outbox;
      sampleRate: number;
      feedbackWindowMs: number;
      now: () => number;
      random: () => number;
      log: Logger;
    },
  ) {}

  /** The share of requests captured now (it rises while the device sees drift; see agent/drift). */
  get sampleRate(): number {
    return this.deps.sampleRate;
  }

  set sampleRate(rate: number) {
    this.deps.sampleRate = Math.min(1, Math.max(0, rate));
  }

  /** Called after every successful inference. Cheap when the request is not sampled. */
  offer(
    model: ModelRef,
    requestId: string,
    input: FeedTensor | undefined,
    output: OutputTensor | undefined,
  ): void {
    if (!input || !output || this.deps.random() >= this.deps.sampleRate) return;
    const rows = input.dims[0] ?? 1;
    const inWidth = elementCount(input.dims.slice(1));
    const outWidth = elementCount(output.dims.slice(1));
    const ts = this.deps.now();
    const captured: CapturedSample[] = [];
    for (let r = 0; r < rows; r++) {
      captured.push({
        id: rows === 1 ? requestId : `${requestId}:${r}`,
        features: Array.from(
          input.data.subarray(r * inWidth, (r + 1) * inWidth) as ArrayLike<number | bigint>,
          Number,
        ),
        output: Array.from(output.data as ArrayLike<number>)
          .slice(r * outWidth, (r + 1) * outWidth)
          .map(Number),
        label: null,
        ts,
      });
    }
    this.counters.sampled++;
    const key = keyOf(model.name, requestId);
    const write = this.deps.pending
      .put(key, { model, requestId, at: ts, rows: captured })
      .catch((err) => this.deps.log.error({ err }, 'capture not stored'))
      .finally(() => {
        if (this.writing.get(key) === write) this.writing.delete(key);
      });
    this.writing.set(key, write);
  }

  /**
   * Ground truth for a request: one label (all rows) or one per row. Returns false when the request was
   * not sampled (or its window has passed): feedback is welcome either way, only captured ones go to the pool.
   */
  async feedback(
    model: string,
    requestId: string,
    labels: FeedbackLabel | FeedbackLabel[],
  ): Promise<boolean> {
    const key = keyOf(model, requestId);
    await this.writing.get(key);
    const pending = await this.deps.pending.get(key);
    if (!pending) return false;
    const rows = pending.rows.map((row, i) => ({
      ...row,
      label: Array.isArray(labels) ? (labels[i] ?? null) : labels,
    }));
    await this.deps.outbox.append(rows.map((sample) => ({ model: pending.model, sample })));
    await this.deps.pending.del(key);
    this.counters.labeled++;
    return true;
  }

  /** Move captures whose feedback window has passed to the outbox, unlabeled. */
  async sweep(): Promise<number> {
    const cutoff = this.deps.now() - this.deps.feedbackWindowMs;
    let moved = 0;
    for (const pending of await this.deps.pending.values()) {
      if (pending.at > cutoff) continue;
      await this.deps.outbox.append(pending.rows.map((sample) => ({ model: pending.model, sample })));
      await this.deps.pending.del(keyOf(pending.model.name, pending.requestId));
      moved++;
    }
    this.counters.expired += moved;
    return moved;
  }
}
