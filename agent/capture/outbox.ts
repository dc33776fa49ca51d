/**
 * The durable outbox for captured samples: a LevelDB queue that survives broker outages and restarts.
 * Invariants: an item leaves the outbox only after the broker acknowledged the batch carrying it (QoS 1
 * PUBACK), so nothing is lost while the broker is unreachable; the outbox is bounded, and when full the
 * OLDEST items are dropped and counted — the count travels with the next batch, so no loss is silent.
 */
import type { CapturedSample, ModelRef } from '../../shared/protocol/messages.js';

export interface OutboxItem {
  model: ModelRef;
  sample: CapturedSample;
}

/** The slice of a LevelDB sublevel the outbox needs (keys are zero-padded sequence numbers). */
export interface OutboxStore {
  batch(ops: ({ type: 'put'; key: string; value: unknown } | { type: 'del'; key: string })[]): Promise<void>;
  entries(limit: number): Promise<[string, unknown][]>;
  keys(): Promise<string[]>;
  get(key: string): Promise<unknown>;
}

const META_DROPPED = '~dropped';
const META_SEQ = '~seq';
const key = (seq: number) => String(seq).padStart(16, '0');

export class Outbox {
  private seq = 0;
  private size = 0;
  private dropped = 0;
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: OutboxStore,
    private readonly limit: number,
  ) {}

  static async open(store: OutboxStore, limit: number): Promise<Outbox> {
    const outbox = new Outbox(store, limit);
    const keys = (await store.keys()).filter((k) => !k.startsWith('~'));
    outbox.size = keys.length;
    outbox.seq = Math.max(
      Number((await store.get(META_SEQ)) ?? 0),
      keys.length ? Number(keys[keys.length - 1]) : 0,
    );
    outbox.dropped = Number((await store.get(META_DROPPED)) ?? 0);
    return outbox;
  }

  get length(): number {
    return this.size;
  }

  /** Items dropped (outbox full) and not yet reported to the fleet. */
  get droppedUnreported(): number {
    return this.dropped;
  }

  append(items: OutboxItem[]): Promise<void> {
    return this.serial(async () => {
      await this.store.batch([
        ...items.map((value) => ({ type: 'put' as const, key: key(++this.seq), value })),
        { type: 'put', key: META_SEQ, value: this.seq },
      ]);
      this.size += items.length;
      const overflow = this.size - this.limit;
      if (overflow <= 0) return;
      // Full: drop the oldest (keys sort by sequence; the '~' meta keys sort after every sequence number).
      const victims = (await this.store.entries(overflow)).map(([k]) => k).filter((k) => !k.startsWith('~'));
      this.size -= victims.length;
      this.dropped += victims.length;
      await this.store.batch([
        ...victims.map((k) => ({ type: 'del' as const, key: k })),
        { type: 'put', key: META_DROPPED, value: this.dropped },
      ]);
    });
  }

  /** The oldest items of one model (the oldest item's), up to `max`, without removing them. */
  async peek(max: number): Promise<{ keys: string[]; model: ModelRef; samples: CapturedSample[] } | null> {
    const entries = (await this.store.entries(max + 2)).filter(([k]) => !k.startsWith('~')).slice(0, max);
    if (entries.length === 0) return null;
    const first = entries[0]![1] as OutboxItem;
    const same = entries.filter(([, v]) => {
      const m = (v as OutboxItem).model;
      return m.name === first.model.name && m.version === first.model.version;
    });
    return {
      keys: same.map(([k]) => k),
      model: first.model,
      samples: same.map(([, v]) => (v as OutboxItem).sample),
    };
  }

  /** Remove delivered items and clear the dropped count that went out with them. */
  acknowledge(keys: string[], droppedReported: number): Promise<void> {
    return this.serial(async () => {
      this.dropped -= droppedReported;
      this.size -= keys.length;
      await this.store.batch([
        ...keys.map((k) => ({ type: 'del' as const, key: k })),
        { type: 'put', key: META_DROPPED, value: this.dropped },
      ]);
    });
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work, work);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
