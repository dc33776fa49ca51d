/**
 * The single executable's native-addon cache (agent/sea/native.ts), with plain bytes as assets: where the
 * cache goes, extraction verified against the manifest, reuse, and a lost rename race (made deterministic by
 * a second extraction that finishes while the first is still reading its assets).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { brotliCompressSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  cacheRootCandidates,
  dataDirFromArgv,
  ensureExtracted,
  type NativeManifest,
  nativeDirName,
  pickCacheRoot,
} from '../../../../agent/sea/native.js';

const LIB = Buffer.from('a shared library, repeated '.repeat(1000));
const ADDON = Buffer.from('an addon');

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

const manifest: NativeManifest = {
  target: 'linux-x64',
  files: [
    {
      asset: 'native/addon.node',
      file: 'addon.node',
      addon: 'onnxruntime',
      ...meta(ADDON),
      encoding: 'identity',
    },
    { asset: 'native/lib.so.1.br', file: 'lib.so.1', ...meta(LIB), encoding: 'br' },
  ],
};
const stored: Record<string, Uint8Array> = {
  'native/addon.node': ADDON,
  'native/lib.so.1.br': brotliCompressSync(LIB),
};

function meta(b: Buffer) {
  return { sha256: sha256(b), size: b.length };
}

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'edgefleet-native-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('cache location', () => {
  it('is $EDGEFLEET_CACHE_DIR, else $XDG_CACHE_HOME/edgefleet, else ~/.cache/edgefleet; then the data dir', () => {
    expect(cacheRootCandidates({ EDGEFLEET_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' }, '/home/u', '/d')).toEqual(
      ['/c', '/d/cache'],
    );
    expect(cacheRootCandidates({ XDG_CACHE_HOME: '/x' }, '/home/u', '/d')).toEqual([
      '/x/edgefleet',
      '/d/cache',
    ]);
    expect(cacheRootCandidates({}, '/home/u', 'rel')).toEqual([
      '/home/u/.cache/edgefleet',
      resolve('rel', 'cache'),
    ]);
  });

  it('takes the data dir from the command line, or the CLI default', () => {
    expect(dataDirFromArgv(['run', '--data-dir', '/var/lib/a'])).toBe('/var/lib/a');
    expect(dataDirFromArgv(['run', '--data-dir=/var/lib/b', '--api-port', '0'])).toBe('/var/lib/b');
    expect(dataDirFromArgv(['run'])).toBe('./edgefleet-agent-data');
  });

  it('falls back to the next candidate when one cannot be created, and says so', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, '');
    const notes: string[] = [];
    const picked = pickCacheRoot([join(file, 'cache'), join(root, 'data', 'cache')], (l) => notes.push(l));
    expect(picked).toBe(join(root, 'data', 'cache'));
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain(`${join(file, 'cache')} is not writable (ENOTDIR)`);
    expect(() => pickCacheRoot([join(file, 'x')], () => undefined)).toThrow(/no writable cache directory/);
  });
});

describe('extraction', () => {
  it('writes the manifest files, decompressed, under a name derived from their hashes', async () => {
    const dir = ensureExtracted(manifest, (k) => stored[k]!, root);
    expect(dir).toBe(join(root, 'native', nativeDirName(manifest)));
    expect(await readFile(join(dir, 'lib.so.1'))).toEqual(LIB);
    expect(await readFile(join(dir, 'addon.node'))).toEqual(ADDON);
    expect(await readdir(join(root, 'native'))).toEqual([nativeDirName(manifest)]);
  });

  it('names differ when any file differs', () => {
    const other = {
      ...manifest,
      files: [manifest.files[0]!, { ...manifest.files[1]!, sha256: '0'.repeat(64) }],
    };
    expect(nativeDirName(other)).not.toBe(nativeDirName(manifest));
    expect(nativeDirName({ ...manifest, target: 'linux-arm64' })).not.toBe(nativeDirName(manifest));
  });

  it('reuses a complete copy without reading the assets again', () => {
    ensureExtracted(manifest, (k) => stored[k]!, root);
    const dir = ensureExtracted(
      manifest,
      () => {
        throw new Error('read an asset on a warm start');
      },
      root,
    );
    expect(dir).toBe(join(root, 'native', nativeDirName(manifest)));
  });

  it('uses the copy of a process that finished first, and leaves no temp directory', async () => {
    let nested = '';
    const dir = ensureExtracted(
      manifest,
      (k) => {
        // The "other process" extracts completely while this one is half way through.
        if (!nested) nested = ensureExtracted(manifest, (k2) => stored[k2]!, root);
        return stored[k]!;
      },
      root,
    );
    expect(dir).toBe(nested);
    expect(await readdir(join(root, 'native'))).toEqual([nativeDirName(manifest)]);
    expect(await readFile(join(dir, 'lib.so.1'))).toEqual(LIB);
  });

  it('replaces an incomplete copy', async () => {
    const dir = ensureExtracted(manifest, (k) => stored[k]!, root);
    await unlink(join(dir, 'lib.so.1'));
    expect(ensureExtracted(manifest, (k) => stored[k]!, root)).toBe(dir);
    expect(await readFile(join(dir, 'lib.so.1'))).toEqual(LIB);
    expect(await readdir(join(root, 'native'))).toEqual([nativeDirName(manifest)]);
  });

  it('refuses assets that do not match the manifest, and leaves nothing behind', async () => {
    const tampered: Record<string, Uint8Array> = { ...stored, 'native/addon.node': Buffer.from('an addoN') };
    expect(() => ensureExtracted(manifest, (k) => tampered[k]!, root)).toThrow(
      /embedded addon\.node does not match its manifest: expected 8 bytes with sha256 [0-9a-f]{64}, found 8 bytes/,
    );
    expect(await readdir(join(root, 'native'))).toEqual([]);
  });
});
