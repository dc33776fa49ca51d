/** Content-addressed artifact files: addressed by sha256, written whole or not at all, read by range. */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../../../fleet-server/store/artifacts.js';
import { sha256Hex } from '../../../../shared/crypto/signing.js';

describe('ArtifactStore', () => {
  let dir: string;
  let store: ArtifactStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-artifacts-'));
    store = new ArtifactStore(dir);
    await store.init();
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('stores bytes under their sha256, once, leaving no temp files', async () => {
    const bytes = new TextEncoder().encode('0123456789abcdef');
    const first = await store.put(bytes);
    expect(first).toEqual({ sha256: sha256Hex(bytes), size: 16 });
    expect(await store.put(bytes)).toEqual(first);
    expect(await readdir(join(dir, 'sha256'))).toEqual([first.sha256]);
    expect(new Uint8Array(await readFile(join(dir, 'sha256', first.sha256)))).toEqual(bytes);
    expect(await store.stat(first.sha256)).toEqual(first);
    expect(await store.stat('0'.repeat(64))).toBeUndefined();
  });

  it('reads inclusive byte ranges', async () => {
    const { sha256 } = await store.put(new TextEncoder().encode('0123456789'));
    expect(await text(store.read(sha256))).toBe('0123456789');
    expect(await text(store.read(sha256, 3, 5))).toBe('345');
    expect(await text(store.read(sha256, 9, 9))).toBe('9');
  });

  it('refuses anything that is not a sha256 as an address (no path tricks)', () => {
    for (const bad of ['../../etc/passwd', 'A'.repeat(64), 'abc', `${'0'.repeat(63)}/`]) {
      expect(() => store.pathOf(bad), bad).toThrow(/not a sha256/);
    }
  });
});
