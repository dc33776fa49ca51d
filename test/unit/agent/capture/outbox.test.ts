/** The sample outbox over a real LevelDB: bounded (oldest dropped and counted), durable across reopen. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Outbox, type OutboxItem } from '../../../../agent/capture/outbox.js';
import { AgentDb } from '../../../../agent/store.js';

const item = (id: string, version = 1): OutboxItem => ({
  model: { name: 'm', version },
  sample: { id, features: [1, 2], output: [0.5], label: null, ts: 1 },
});

describe('Outbox', () => {
  let dir: string;
  let db: AgentDb;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outbox-'));
    db = await AgentDb.open(join(dir, 'db'));
  });
  afterEach(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps items in order until acknowledged, and survives a reopen', async () => {
    const outbox = await Outbox.open(db.outbox(), 10);
    await outbox.append([item('a'), item('b'), item('c')]);
    const batch = await outbox.peek(2);
    expect(batch?.samples.map((s) => s.id)).toEqual(['a', 'b']);
    await outbox.acknowledge(batch!.keys, 0);
    await db.close();
    db = await AgentDb.open(join(dir, 'db'));
    const reopened = await Outbox.open(db.outbox(), 10);
    expect(reopened.length).toBe(1);
    expect((await reopened.peek(5))?.samples.map((s) => s.id)).toEqual(['c']);
    await reopened.append([item('d')]);
    expect((await reopened.peek(5))?.samples.map((s) => s.id)).toEqual(['c', 'd']);
  });

  it('when full, drops the oldest and counts them until a batch reports the count', async () => {
    const outbox = await Outbox.open(db.outbox(), 3);
    await outbox.append([item('1'), item('2')]);
    await outbox.append([item('3'), item('4'), item('5')]);
    expect(outbox.length).toBe(3);
    expect(outbox.droppedUnreported).toBe(2);
    const batch = await outbox.peek(10);
    expect(batch?.samples.map((s) => s.id)).toEqual(['3', '4', '5']);
    await outbox.acknowledge(batch!.keys, outbox.droppedUnreported);
    expect(outbox.droppedUnreported).toBe(0);
    expect(outbox.length).toBe(0);
    expect(await outbox.peek(10)).toBeNull();
  });

  it('a batch carries one model version only', async () => {
    const outbox = await Outbox.open(db.outbox(), 10);
    await outbox.append([item('a', 1), item('b', 2), item('c', 1)]);
    const batch = await outbox.peek(10);
    expect(batch?.model).toEqual({ name: 'm', version: 1 });
    expect(batch?.samples.map((s) => s.id)).toEqual(['a', 'c']);
  });
});
