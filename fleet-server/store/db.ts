/**
 * LevelDB for fleet metadata: one database, one JSON sublevel per collection. Modules receive only the
 * `Collection` they own. Keys are strings; values are JSON.
 */
import { Level } from 'level';

export interface Collection<T> {
  get(key: string): Promise<T | undefined>;
  put(key: string, value: T): Promise<void>;
  del(key: string): Promise<void>;
  /** Values for many keys in one read (undefined where absent). */
  getMany(keys: string[]): Promise<(T | undefined)[]>;
  /** Whether each key is present, in one read; no value is copied or decoded. */
  hasMany(keys: string[]): Promise<boolean[]>;
  /** Many puts in one atomic LevelDB batch. */
  putMany(entries: [string, T][]): Promise<void>;
  /** Values in key order, optionally restricted to keys starting with `prefix`. */
  values(prefix?: string): Promise<T[]>;
  entries(prefix?: string): Promise<[string, T][]>;
  /** Up to `limit` entries in key order, strictly after `after` (from the start when absent). */
  range(options: { after?: string | undefined; limit: number }): Promise<[string, T][]>;
  /** A put for `Db.batch`, which writes puts of several collections atomically. */
  putOp(key: string, value: T): BatchOp;
}

/** One write of a cross-collection batch (opaque: made by `Collection.putOp`). */
export interface BatchOp {
  readonly type: 'put';
  readonly key: string;
  readonly value: unknown;
  readonly sublevel: unknown;
}

export class Db {
  readonly level: Level<string, unknown>;

  private constructor(level: Level<string, unknown>) {
    this.level = level;
  }

  static async open(path: string): Promise<Db> {
    const level = new Level<string, unknown>(path, { valueEncoding: 'json' });
    await level.open();
    return new Db(level);
  }

  collection<T>(name: string): Collection<T> {
    return this.sublevel<T>(name, 'json');
  }

  /** A collection of raw byte values, for data its owner encodes itself (compact, or on a hot path). */
  bytesCollection(name: string): Collection<Buffer> {
    return this.sublevel<Buffer>(name, 'buffer');
  }

  private sublevel<T>(name: string, valueEncoding: 'json' | 'buffer'): Collection<T> {
    const sub = this.level.sublevel<string, T>(name, { valueEncoding });
    const range = (prefix?: string) => (prefix ? { gte: prefix, lt: `${prefix}\uffff` } : {});
    return {
      get: async (key) => (await sub.get(key)) ?? undefined,
      put: (key, value) => sub.put(key, value),
      del: (key) => sub.del(key),
      getMany: async (keys) => (await sub.getMany(keys)).map((v) => v ?? undefined),
      hasMany: (keys) => sub.hasMany(keys),
      putMany: (entries) => sub.batch(entries.map(([key, value]) => ({ type: 'put' as const, key, value }))),
      values: (prefix) => sub.values(range(prefix)).all(),
      entries: (prefix) => sub.iterator(range(prefix)).all() as Promise<[string, T][]>,
      range: ({ after, limit }) =>
        sub.iterator({ ...(after === undefined ? {} : { gt: after }), limit }).all() as Promise<
          [string, T][]
        >,
      putOp: (key, value) => ({ type: 'put', key, value, sublevel: sub }),
    };
  }

  /** Writes of several collections in one atomic LevelDB batch. */
  batch(ops: BatchOp[]): Promise<void> {
    return this.level.batch(ops as never);
  }

  close(): Promise<void> {
    return this.level.close();
  }
}
