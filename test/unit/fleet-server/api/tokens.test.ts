/** Operator tokens: shown once, stored only as a digest, roles ordered, one bootstrap admin per data dir. */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type OperatorTokenRecord,
  OperatorTokens,
  roleAtLeast,
} from '../../../../fleet-server/api/tokens.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';

describe('OperatorTokens', () => {
  let store: TempStore;
  let tokens: OperatorTokens;
  beforeEach(async () => {
    store = await openTempStore('fleet-tokens-');
    tokens = new OperatorTokens(
      store.db.collection<OperatorTokenRecord>('operator-tokens'),
      manualClock().now,
    );
  });
  afterEach(() => store.close());

  it('issues ef_ tokens of 32 random bytes, stores only their digest, and authenticates them', async () => {
    const issued = await tokens.create('operator', 'ci');
    expect(issued.token).toMatch(/^ef_[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(await store.db.level.iterator().all())).not.toContain(issued.token);
    expect(await tokens.authenticate(issued.token)).toEqual({ id: issued.id, name: 'ci', role: 'operator' });
    expect(await tokens.authenticate(`${issued.token}x`)).toBeUndefined();
    expect(await tokens.authenticate('')).toBeUndefined();
  });

  it('creates the bootstrap admin once, in a 0600 file, and never again while an admin exists', async () => {
    const token = await tokens.bootstrapAdmin(store.dir);
    expect(token).toMatch(/^ef_/);
    const file = join(store.dir, 'admin-token');
    expect((await readFile(file, 'utf8')).trim()).toBe(token);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await tokens.authenticate(token!))?.role).toBe('admin');
    expect(await tokens.bootstrapAdmin(store.dir)).toBeNull();
    expect((await readFile(file, 'utf8')).trim()).toBe(token);
  });

  it.each([
    ['viewer', 'viewer', true],
    ['viewer', 'operator', false],
    ['operator', 'viewer', true],
    ['operator', 'admin', false],
    ['admin', 'operator', true],
  ] as const)('%s has at least %s: %s', (role, needed, ok) => {
    expect(roleAtLeast(role, needed)).toBe(ok);
  });
});
