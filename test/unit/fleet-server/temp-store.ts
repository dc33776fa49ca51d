/** A real LevelDB in a fresh temp dir for one suite, removed afterwards. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Db } from '../../../fleet-server/store/db.js';

export interface TempStore {
  dir: string;
  db: Db;
  close(): Promise<void>;
}

export async function openTempStore(prefix = 'fleet-unit-'): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const db = await Db.open(join(dir, 'db'));
  return {
    dir,
    db,
    async close() {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A clock tests move by hand. */
export function manualClock(start = '2026-11-01T00:00:00Z') {
  let now = new Date(start);
  return {
    now: () => now,
    advance(ms: number) {
      now = new Date(now.getTime() + ms);
    },
  };
}
