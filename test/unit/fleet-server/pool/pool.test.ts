/**
 * The data pool over a real LevelDB: tasks derived from imported files, every kind of bad sample refused
 * with its counted reason, idempotent re-delivery, and content-hashed immutable snapshots.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseImport } from '../../../../fleet-server/pool/import.js';
import { Pool } from '../../../../fleet-server/pool/pool.js';
import { Snapshots } from '../../../../fleet-server/pool/snapshots.js';
import { ArtifactStore } from '../../../../fleet-server/store/artifacts.js';
import type { Sample, Task } from '../../../../shared/pool.js';
import { openTempStore, type TempStore } from '../temp-store.js';

const NOW = new Date('2026-11-01T00:00:00Z');
const CSV = [
  'temp,vibration,site,label',
  '20.5,0.1,north,ok',
  '21,0.3,south,ok',
  '80,2.5,north,fault',
  '22,0.2,east,ok',
].join('\n');

describe('data pool', () => {
  let store: TempStore;
  let pool: Pool;
  let snapshots: Snapshots;

  beforeEach(async () => {
    store = await openTempStore('pool-');
    pool = new Pool(store.db);
    const artifacts = new ArtifactStore(join(store.dir, 'artifacts'));
    await artifacts.init();
    snapshots = new Snapshots(store.db.collection('snapshots'), artifacts, pool);
  });
  afterEach(async () => store.close());

  async function importCsv(text: string, name = 'machines', existing?: Task) {
    const parsed = parseImport(text, existing, { format: 'csv', sourceName: 'machines.csv', now: NOW });
    const task = existing ?? (await pool.createTask({ ...parsed.derivedTask, name, model: name }));
    return { task, result: await pool.ingest(task, parsed.source, parsed.samples) };
  }

  it('derives a task from a CSV header: numeric columns are features, the label column gives the classes', async () => {
    const { task, result } = await importCsv(CSV);
    expect(task).toMatchObject({
      kind: 'classification',
      features: ['temp', 'vibration'],
      classes: ['fault', 'ok'],
      label: 'label',
    });
    expect(result).toMatchObject({ accepted: 4, duplicates: 0, rejected: {} });
    const stats = await pool.stats(task);
    expect(stats).toMatchObject({ samples: 4, labeled: 4, acceptedBySource: { 'import:machines.csv': 4 } });
  });

  it('importing the same file again stores nothing new', async () => {
    const { task } = await importCsv(CSV);
    const again = await importCsv(CSV, 'machines', task);
    expect(again.result).toMatchObject({ accepted: 0, duplicates: 4 });
    expect((await pool.stats(task)).samples).toBe(4);
  });

  it('JSONL with a custom label column and a regression kind', async () => {
    const text = ['{"x":1,"y":2,"target":3.5}', '{"x":2,"y":0,"target":-1}', ''].join('\n');
    const parsed = parseImport(text, undefined, {
      format: 'jsonl',
      label: 'target',
      kind: 'regression',
      sourceName: 'r.jsonl',
      now: NOW,
    });
    expect(parsed.derivedTask).toMatchObject({ kind: 'regression', features: ['x', 'y'], label: 'target' });
    expect(parsed.samples.map((s) => s.label)).toEqual([3.5, -1]);
    expect(() =>
      parseImport('{"x":1}\nnot json', undefined, { format: 'jsonl', sourceName: 'r', now: NOW }),
    ).toThrow(/line 2 is not JSON/);
    expect(() =>
      parseImport(CSV, undefined, { format: 'csv', label: 'status', sourceName: 'r', now: NOW }),
    ).toThrow(/no label column 'status'/);
  });

  it('refuses each kind of bad sample with its own counted reason, per source, and stores the good ones', async () => {
    const { task } = await importCsv(CSV);
    const good: Sample = { id: 'dev-1:r1', source: 'dev-1', features: [20, 0.1], label: 'ok', ts: 1 };
    const batch: Sample[] = [
      good,
      { ...good, id: 'dev-1:r2', features: [20] },
      { ...good, id: 'dev-1:r3', features: [Number.NaN, 1] },
      { ...good, id: 'dev-1:r4', features: [Number.POSITIVE_INFINITY, 1] },
      { ...good, id: 'dev-1:r5', label: 'melted' },
      { ...good, id: 'dev-1:r6', label: null },
      good,
    ];
    const result = await pool.ingest(task, 'dev-1', batch);
    expect(result.accepted).toBe(2);
    expect(result.duplicates).toBe(1);
    expect(result.rejected).toEqual({
      wrong_feature_count: 1,
      non_finite_feature: 2,
      label_not_in_classes: 1,
    });
    expect(result.examples[0]).toMatchObject({
      id: 'dev-1:r2',
      reason: 'wrong_feature_count',
      detail: 'expected 2 features, got 1',
    });
    await pool.countRejected(task.name, 'dev-2', 'oversize_batch', 500);
    const stats = await pool.stats(task);
    expect(stats.rejectedBySource).toEqual({
      'dev-1': { wrong_feature_count: 1, non_finite_feature: 2, label_not_in_classes: 1 },
      'dev-2': { oversize_batch: 500 },
    });
    expect(stats).toMatchObject({ samples: 6, labeled: 5 });
  });

  it('the same batch arriving twice at once is stored once, each sample counted once', async () => {
    const { task } = await importCsv(CSV);
    const batch = (source: string): Sample[] =>
      Array.from({ length: 50 }, (_, i) => ({
        id: `dev-1:c${i}`,
        source,
        features: [i, i / 7],
        label: i % 3 ? 'ok' : null,
        ts: i,
      }));
    // Not awaited in between: all three wait for, and are written in, the same group.
    const [a, b, overlap] = await Promise.all([
      pool.ingest(task, 'dev-1', batch('dev-1')),
      pool.ingest(task, 'dev-1', batch('dev-1')),
      pool.ingest(task, 'dev-2', [
        ...batch('dev-2').slice(40),
        { id: 'dev-2:new', source: 'dev-2', features: [1, 1], label: 'fault', ts: 1 },
      ]),
    ]);
    expect(a).toMatchObject({ accepted: 50, duplicates: 0 });
    expect(b).toMatchObject({ accepted: 0, duplicates: 50 });
    expect(overlap).toMatchObject({ accepted: 1, duplicates: 10 });
    // And once more after they are stored: nothing new.
    expect(await pool.ingest(task, 'dev-1', batch('dev-1'))).toMatchObject({ accepted: 0, duplicates: 50 });
    const stats = await pool.stats(task);
    expect(stats.samples).toBe(4 + 51);
    expect(stats.acceptedBySource).toEqual({ 'import:machines.csv': 4, 'dev-1': 50, 'dev-2': 1 });
    expect(await pool.acceptedCount(task)).toBe(stats.samples);
  });

  it('batches of one group each get their own result and refusal counts', async () => {
    const { task } = await importCsv(CSV);
    const good = (id: string): Sample => ({ id, source: 'x', features: [1, 2], label: 'ok', ts: 1 });
    const results = await Promise.all([
      pool.ingest(task, 'dev-1', [good('dev-1:a'), { ...good('dev-1:b'), features: [1] }]),
      pool.ingest(task, 'dev-2', [{ ...good('dev-2:a'), label: 'nope' }, good('dev-2:b')]),
      pool.ingest(task, 'dev-3', [{ ...good('dev-3:a'), features: [Number.NaN, 1] }]),
    ]);
    expect(results.map((r) => [r.accepted, r.rejected])).toEqual([
      [1, { wrong_feature_count: 1 }],
      [1, { label_not_in_classes: 1 }],
      [0, { non_finite_feature: 1 }],
    ]);
    expect((await pool.stats(task)).rejectedBySource).toEqual({
      'dev-1': { wrong_feature_count: 1 },
      'dev-2': { label_not_in_classes: 1 },
      'dev-3': { non_finite_feature: 1 },
    });
  });

  it('property: a stored sample reads back as its JSON text would', async () => {
    const task = await pool.createTask({
      name: 'numbers',
      kind: 'regression',
      features: ['a', 'b', 'c'],
      label: 'y',
      model: 'numbers',
      createdAt: NOW.toISOString(),
    });
    const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
    const sample = fc.record({
      id: fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }),
      source: fc.string({ minLength: 1, maxLength: 20, unit: 'binary' }),
      features: fc.array(fc.oneof(finite, fc.constantFrom(-0, 0, 5e-324, Number.MAX_VALUE)), {
        minLength: 3,
        maxLength: 3,
      }),
      label: fc.option(finite, { nil: null }),
      ts: fc.nat(),
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(sample, { selector: (s) => s.id, maxLength: 8 }), async (batch) => {
        // A fresh id space per run, so every sample of this run is new.
        const samples = batch.map((s) => ({ ...s, id: `${run}/${s.id}` }));
        run++;
        expect(await pool.ingest(task, 'prop', samples)).toMatchObject({ accepted: samples.length });
        const stored = (await pool.samplesOf(task)).filter((s) => s.id.startsWith(`${run - 1}/`));
        const asJson = JSON.parse(JSON.stringify(samples)) as Sample[];
        expect(stored).toStrictEqual(asJson.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0)));
      }),
      { numRuns: 60 },
    );
  });

  it('samples stored as JSON text (before the binary layout) still read, and still count as present', async () => {
    const { task } = await importCsv(CSV);
    const old: Sample = { id: 'dev-9:old', source: 'dev-9', features: [1.5, -2], label: null, ts: 7 };
    await store.db.collection<Sample>('samples').put(`${task.name}/${old.id}`, old);
    expect(await pool.samplesOf(task)).toContainEqual(old);
    expect(await pool.stats(task)).toMatchObject({ samples: 5, labeled: 4 });
    expect(await pool.ingest(task, 'dev-9', [old])).toMatchObject({ accepted: 0, duplicates: 1 });
  });

  it('a regression label must be a finite number', async () => {
    const task = await pool.createTask({
      name: 'energy',
      kind: 'regression',
      features: ['a'],
      label: 'kwh',
      model: 'energy',
      createdAt: NOW.toISOString(),
    });
    const result = await pool.ingest(task, 'dev-1', [
      { id: '1', source: 'dev-1', features: [1], label: Number.NaN, ts: 1 },
      { id: '2', source: 'dev-1', features: [1], label: 'high', ts: 1 },
      { id: '3', source: 'dev-1', features: [1], label: 2.5, ts: 1 },
    ]);
    expect(result).toMatchObject({ accepted: 1, rejected: { non_finite_label: 2 } });
  });

  it('refuses malformed tasks and duplicates of a name', async () => {
    await expect(
      pool.createTask({
        name: 'x',
        kind: 'classification',
        features: ['a'],
        classes: ['only'],
        label: 'l',
        model: 'x',
        createdAt: NOW.toISOString(),
      }),
    ).rejects.toThrow(/at least two classes/);
    await importCsv(CSV);
    await expect(importCsv(CSV, 'machines')).rejects.toThrow(/already exists/);
  });

  it('snapshots are content-hashed and immutable: same data, same snapshot; more data, a new one', async () => {
    const { task } = await importCsv(CSV);
    await pool.ingest(task, 'dev-7', [
      { id: 'dev-7:a', source: 'dev-7', features: [30, 1], label: null, ts: NOW.getTime() + 60_000 },
    ]);
    const first = await snapshots.create(task, 'tester', NOW);
    expect(first).toMatchObject({
      task: 'machines',
      count: 5,
      labeled: 4,
      bySource: { 'import:machines.csv': 4, 'dev-7': 1 },
      byLabel: { ok: 3, fault: 1, unlabeled: 1 },
      timeRange: { from: NOW.toISOString(), to: new Date(NOW.getTime() + 60_000).toISOString() },
    });
    expect(first.id).toBe(`snap-${first.sha256.slice(0, 16)}`);
    const again = await snapshots.create(task, 'someone-else', new Date(NOW.getTime() + 1000));
    expect(again).toEqual(first);
    const frozen = await snapshots.samples(first);
    expect(frozen.map((s) => s.id)).toEqual([...frozen.map((s) => s.id)].sort());
    expect(frozen).toHaveLength(5);

    await pool.ingest(task, 'dev-7', [
      { id: 'dev-7:b', source: 'dev-7', features: [31, 1], label: 'ok', ts: NOW.getTime() },
    ]);
    const second = await snapshots.create(task, 'tester', NOW);
    expect(second.id).not.toBe(first.id);
    // The first snapshot's data did not change.
    expect(await snapshots.samples(first)).toEqual(frozen);
    expect((await snapshots.list('machines')).map((s) => s.id).sort()).toEqual([first.id, second.id].sort());
  });

  it('an empty task cannot be snapshotted', async () => {
    const task = await pool.createTask({
      name: 'empty',
      kind: 'regression',
      features: ['a'],
      label: 'y',
      model: 'empty',
      createdAt: NOW.toISOString(),
    });
    await expect(snapshots.create(task, 'tester', NOW)).rejects.toThrow(/no samples/);
  });
});
