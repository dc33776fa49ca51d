/**
 * Immutable dataset snapshots. A snapshot freezes a task's samples, ordered by id, as JSON Lines stored
 * content-addressed in the artifact store: its id derives from the sha256 of exactly those bytes, so the
 * same data always gives the same snapshot and a training run can name the data it saw.
 * Storage: `snapshots` id → SnapshotRecord (migrated on read: `SNAPSHOT_MIGRATIONS`); the data at
 * artifacts/sha256/<sha256>.
 */
import { canonicalize } from '../../shared/canonical-json.js';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { type Sample, SampleSchema, type Task } from '../../shared/pool.js';
import type { ArtifactStore } from '../store/artifacts.js';
import type { Collection } from '../store/db.js';
import { type Migrations, migrated } from '../store/migrations.js';
import type { Pool } from './pool.js';

export interface SnapshotRecord {
  id: string;
  task: string;
  sha256: string;
  bytes: number;
  count: number;
  labeled: number;
  /** Samples per source (device id, or import:<file>). */
  bySource: Record<string, number>;
  /** Samples per label (class name, or `unlabeled`; regression: `labeled`/`unlabeled`). */
  byLabel: Record<string, number>;
  timeRange: { from: string; to: string };
  /** Only samples captured at or after this time were taken (null: the whole pool). */
  since: string | null;
  createdAt: string;
  createdBy: string;
}

/**
 * The `snapshots` collection's schema versions (store/migrations.ts). v2: `since` is always present (null in
 * snapshots from before snapshots could start at a time, which all took the whole pool).
 */
export const SNAPSHOT_MIGRATIONS: Migrations<SnapshotRecord> = {
  name: 'snapshots',
  version: 2,
  steps: [(v1) => ({ ...v1, since: v1.since ?? null })],
};

export class Snapshots {
  private readonly records: Collection<SnapshotRecord>;

  /** `records` as stored: the snapshots apply `SNAPSHOT_MIGRATIONS` to it. */
  constructor(
    records: Collection<SnapshotRecord>,
    private readonly artifacts: ArtifactStore,
    private readonly pool: Pool,
  ) {
    this.records = migrated(records, SNAPSHOT_MIGRATIONS);
  }

  async create(
    task: Task,
    actor: string,
    now: Date,
    options: { since?: Date } = {},
  ): Promise<SnapshotRecord> {
    const since = options.since?.getTime();
    const all = await this.pool.samplesOf(task);
    const samples = since === undefined ? all : all.filter((s) => s.ts >= since);
    if (samples.length === 0)
      throw new ValidationError(
        `task '${task.name}' has no samples to snapshot${options.since ? ` since ${options.since.toISOString()}` : ''}`,
        { code: 'empty_pool' },
      );
    const bytes = Buffer.from(`${samples.map((s) => canonicalize(s)).join('\n')}\n`);
    const { sha256, size } = await this.artifacts.put(bytes);
    const id = `snap-${sha256.slice(0, 16)}`;
    const existing = await this.records.get(id);
    if (existing) return existing;
    const bySource: Record<string, number> = {};
    const byLabel: Record<string, number> = {};
    let labeled = 0;
    let from = Number.POSITIVE_INFINITY;
    let to = 0;
    for (const s of samples) {
      bySource[s.source] = (bySource[s.source] ?? 0) + 1;
      const key =
        s.label === null ? 'unlabeled' : task.kind === 'classification' ? String(s.label) : 'labeled';
      byLabel[key] = (byLabel[key] ?? 0) + 1;
      if (s.label !== null) labeled++;
      from = Math.min(from, s.ts);
      to = Math.max(to, s.ts);
    }
    const record: SnapshotRecord = {
      id,
      task: task.name,
      sha256,
      bytes: size,
      count: samples.length,
      labeled,
      bySource,
      byLabel,
      timeRange: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
      since: options.since?.toISOString() ?? null,
      createdAt: now.toISOString(),
      createdBy: actor,
    };
    await this.records.put(id, record);
    return record;
  }

  async get(id: string): Promise<SnapshotRecord> {
    const record = await this.records.get(id);
    if (!record) throw new NotFoundError('snapshot', id);
    return record;
  }

  async list(task: string): Promise<SnapshotRecord[]> {
    return (await this.records.values())
      .filter((r) => r.task === task)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** The frozen samples of a snapshot, read back from its content-addressed file. */
  async samples(record: SnapshotRecord): Promise<Sample[]> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.artifacts.read(record.sha256)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks)
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => SampleSchema.parse(JSON.parse(line)));
  }
}
