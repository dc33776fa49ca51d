/**
 * The agent's LevelDB: update records by command id (the update machine's persisted state).
 */
import { Level } from 'level';
import type { PendingCapture, PendingStore } from './capture/capture.js';
import type { OutboxStore } from './capture/outbox.js';
import type { UpdateStore } from './updater/driver.js';
import type { UpdateRecord } from './updater/machine.js';

export class AgentDb {
  private constructor(private readonly level: Level<string, unknown>) {}

  static async open(path: string): Promise<AgentDb> {
    const level = new Level<string, unknown>(path, { valueEncoding: 'json' });
    await level.open();
    return new AgentDb(level);
  }

  updates(): UpdateStore {
    const sub = this.level.sublevel<string, UpdateRecord>('updates', { valueEncoding: 'json' });
    return {
      get: async (id) => (await sub.get(id)) ?? undefined,
      // sync: the record is the crash-recovery point, so it must be on disk before the effect runs.
      put: (record) => sub.put(record.commandId, record, { sync: true } as never),
      all: () => sub.values().all(),
    };
  }

  /** Captures waiting for feedback. */
  pending(): PendingStore {
    const sub = this.level.sublevel<string, PendingCapture>('capture-pending', { valueEncoding: 'json' });
    return {
      get: async (key) => (await sub.get(key)) ?? undefined,
      put: (key, value) => sub.put(key, value),
      del: (key) => sub.del(key),
      values: () => sub.values().all(),
    };
  }

  /** The sample outbox's queue. */
  outbox(): OutboxStore {
    const sub = this.level.sublevel<string, unknown>('outbox', { valueEncoding: 'json' });
    return {
      batch: (ops) => sub.batch(ops),
      entries: (limit) => sub.iterator({ limit }).all() as Promise<[string, unknown][]>,
      keys: () => sub.keys().all(),
      get: async (key) => (await sub.get(key)) ?? undefined,
    };
  }

  close(): Promise<void> {
    return this.level.close();
  }
}
