/**
 * Stored records carry their schema version and are migrated once, when read, so the code that uses them
 * sees only the current shape and "absent in records written before…" branches stay out of the core.
 *
 * A collection opts in with `migrated(collection, migrations)`: every record it writes carries
 * `schemaVersion: migrations.version`; a record read without one is version 1; each older record is passed
 * through the pure steps `steps[v - 1]` (v → v + 1) up to the current version, and the field is removed before
 * the record reaches its owner. Records are not rewritten on read: the next write of a record stores the
 * current version (reads stay reads; an old record costs its steps only until then). A record of a NEWER
 * version than this code knows is refused with an error naming the collection, the key and both versions —
 * never silently read with fields this code would drop on its next write.
 *
 * Version 1 is every record written before versions were stamped, which may span several shapes (fields
 * added release by release), so a step from v1 accepts all of them and leaves what is already current alone.
 * The module that owns a collection declares its `Migrations` beside its record type and applies them to
 * the collection it is given (`migrated` in its constructor), so no caller — the composition root, a test's
 * wiring, a tool — can hand it an unmigrated view; wrapping a collection twice is refused, since the outer
 * wrapper would take the inner one's stripped records for v1 and migrate them again.
 *
 * Not versioned: the audit chain (an entry's hash covers exactly its stored fields: audit/log.ts), byte
 * collections and plain-number values (pool samples and counters), which have no object to carry the field.
 */
import { EdgefleetError } from '../../shared/errors.js';
import type { BatchOp, Collection } from './db.js';

export interface Migrations<T> {
  /** The collection's name, for errors. */
  name: string;
  /** The current schema version (≥ 1). */
  version: number;
  /** `steps[v - 1]` turns a version-v record into a version-(v + 1) one; `version - 1` of them. */
  steps: readonly ((record: Record<string, unknown>) => Record<string, unknown>)[];
  /** Only to type the result: the current record type. */
  readonly _type?: T;
}

/** A collection whose records have had one shape since versions were stamped: version 1, no steps. */
export function firstVersion<T>(name: string): Migrations<T> {
  return { name, version: 1, steps: [] };
}

/** A stored record newer than this code (written by a later release): refused, not mangled. */
export class SchemaVersionError extends EdgefleetError {
  override readonly name = 'SchemaVersionError';
  constructor(collection: string, key: string, found: number, known: number) {
    super(
      'schema_version',
      `${collection} record '${key}' has schema version ${found}, newer than this fleet server knows (${known}): upgrade the fleet server`,
    );
  }
}

/** The current shape of a stored value (migrated, without `schemaVersion`); `stored` is freshly decoded and consumed. */
export function migrate<T>(m: Migrations<T>, key: string, stored: unknown): T {
  const record = stored as Record<string, unknown> & { schemaVersion?: number };
  const found = record.schemaVersion ?? 1;
  if (found > m.version) throw new SchemaVersionError(m.name, key, found, m.version);
  // The value was decoded for this read alone, so the field is dropped in place rather than by copying every
  // record of a scan; it was written last (`stamp`), and deleting an object's last property is cheap in V8.
  delete record.schemaVersion;
  let current: Record<string, unknown> = record;
  for (let v = found; v < m.version; v++) current = m.steps[v - 1]!(current);
  return current as T;
}

function stamp<T>(m: Migrations<T>, value: T): T {
  return { ...(value as object), schemaVersion: m.version } as T;
}

/** Collections `migrated` returned: migrating one again would run its steps twice. */
const wrapped = new WeakSet<Collection<unknown>>();

/** `collection` with its records migrated on read and stamped with the current version on write. */
export function migrated<T>(collection: Collection<T>, m: Migrations<T>): Collection<T> {
  if (wrapped.has(collection as Collection<unknown>))
    throw new Error(`${m.name}: collection is migrated already (its owner applies its migrations)`);
  if (m.steps.length !== m.version - 1)
    throw new Error(
      `${m.name}: version ${m.version} needs ${m.version - 1} migration steps, has ${m.steps.length}`,
    );
  const read = (key: string, value: T | undefined) =>
    value === undefined ? undefined : migrate(m, key, value);
  const result: Collection<T> = {
    get: async (key) => read(key, await collection.get(key)),
    put: (key, value) => collection.put(key, stamp(m, value)),
    del: (key) => collection.del(key),
    getMany: async (keys) => (await collection.getMany(keys)).map((v, i) => read(keys[i]!, v)),
    hasMany: (keys) => collection.hasMany(keys),
    putMany: (entries) => collection.putMany(entries.map(([k, v]) => [k, stamp(m, v)])),
    values: async (prefix) => (await collection.entries(prefix)).map(([k, v]) => migrate(m, k, v)),
    entries: async (prefix) =>
      (await collection.entries(prefix)).map(([k, v]): [string, T] => [k, migrate(m, k, v)]),
    range: async (options) =>
      (await collection.range(options)).map(([k, v]): [string, T] => [k, migrate(m, k, v)]),
    putOp: (key, value): BatchOp => collection.putOp(key, stamp(m, value)),
  };
  wrapped.add(result as Collection<unknown>);
  return result;
}

/**
 * A rollouts step (for `ROLLOUT_MIGRATIONS` in rollouts/record.ts, after its v1→v2 one): every device
 * records its variant. Kept here, as plain JSON in and out, while rollouts/ is being rewritten.
 *
 * A device without `variant` is one of two kinds. A device a late join skipped because no variant of the
 * version fits its profile (reason `no_variant`) has none: it becomes `null`. Every other one belongs to a
 * rollout created before variants existed, and the old code sent it "the version's first variant". That
 * version was pushed before variants too (the rollout targeted it then), so its first variant is its own
 * manifest, signed without a `variant` field, which reads as `default`: the step needs no model registry.
 */
export function rolloutVariantsStep(record: Record<string, unknown>): Record<string, unknown> {
  return {
    ...record,
    devices: (record.devices as Record<string, unknown>[]).map((d) =>
      d.variant !== undefined
        ? d
        : { ...d, variant: (d.reason as { code?: string } | null)?.code === 'no_variant' ? null : 'default' },
    ),
  };
}
