/**
 * Native addons inside the single executable (see build/agent). Inside a Node SEA, `require` reaches
 * built-ins only, so ONNX Runtime's binding (+ libonnxruntime.so.1) and classic-level's LevelDB binding are
 * embedded as SEA assets, with a manifest of what they hold. On first use they are extracted into a cache
 * directory named after their content hash and loaded from there with `process.dlopen`.
 *
 * Invariants:
 * - A cache directory under its final name is complete: files are written and fsynced in a private temp
 *   directory that is then renamed into place. Two processes starting at once each extract; the one whose
 *   rename loses uses the winner's copy.
 * - The name is the hash of the manifest (target + each file's sha256), so a different build never reuses
 *   another's files, and a warm start checks sizes only (no hashing of a 46 MB library on every start).
 * - Extraction checks each file's sha256 against the manifest before the rename.
 *
 * Where: `$EDGEFLEET_CACHE_DIR`, else `$XDG_CACHE_HOME/edgefleet`, else `~/.cache/edgefleet`; when that is
 * not writable, `<data-dir>/cache` (the `--data-dir` of the command line). Files live in `native/<key>/`.
 */
import { createHash } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import * as sea from 'node:sea';
import { brotliDecompressSync } from 'node:zlib';

/** SEA asset key of the manifest (JSON `NativeManifest`). */
export const MANIFEST_ASSET = 'native/manifest.json';

/** The agent's default `--data-dir` (agent/cli.ts): where the cache falls back to without the flag. */
const DEFAULT_DATA_DIR = './edgefleet-agent-data';

export type Addon = 'onnxruntime' | 'classic-level';

export interface NativeFile {
  /** SEA asset key holding the (possibly compressed) bytes. */
  asset: string;
  /** Name once extracted. ORT's binding finds libonnxruntime.so.1 next to itself (RUNPATH `$ORIGIN`). */
  file: string;
  /** The addon `process.dlopen` loads from this file; absent for libraries an addon links against. */
  addon?: Addon;
  /** Of the extracted bytes. */
  sha256: string;
  size: number;
  /** How the asset is stored: `br` is brotli (the large ORT library, 46 MB → 15 MB). */
  encoding: 'identity' | 'br';
}

export interface NativeManifest {
  /** `linux-x64` | `linux-arm64`. */
  target: string;
  files: NativeFile[];
}

/** The cache directory's name for this manifest's files. */
export function nativeDirName(manifest: NativeManifest): string {
  const hash = createHash('sha256').update(manifest.target);
  // Code-unit order, not localeCompare: that would load ICU's collation data (MBs of RSS) on every start.
  for (const f of [...manifest.files].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))) {
    hash.update(`\0${f.file}\0${f.sha256}`);
  }
  return `${manifest.target}-${hash.digest('hex').slice(0, 16)}`;
}

/** `--data-dir <dir>` / `--data-dir=<dir>` from the command line, or the CLI's default. */
export function dataDirFromArgv(argv: readonly string[]): string {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--data-dir' && argv[i + 1] !== undefined) return argv[i + 1]!;
    if (arg.startsWith('--data-dir=')) return arg.slice('--data-dir='.length);
  }
  return DEFAULT_DATA_DIR;
}

/** Cache roots in the order tried: the configured or per-user one, then the agent's data dir. */
export function cacheRootCandidates(env: NodeJS.ProcessEnv, home: string, dataDir: string): string[] {
  const roots: string[] = [];
  if (env['EDGEFLEET_CACHE_DIR']) roots.push(resolve(env['EDGEFLEET_CACHE_DIR']));
  else if (env['XDG_CACHE_HOME']) roots.push(join(resolve(env['XDG_CACHE_HOME']), 'edgefleet'));
  else if (home) roots.push(join(home, '.cache', 'edgefleet'));
  roots.push(join(resolve(dataDir), 'cache'));
  return roots;
}

/** The first candidate that exists or can be created, and is writable. */
export function pickCacheRoot(candidates: readonly string[], note: (line: string) => void): string {
  const reasons: string[] = [];
  for (const [i, root] of candidates.entries()) {
    try {
      mkdirSync(root, { recursive: true, mode: 0o700 });
      accessSync(root, constants.W_OK);
      if (i > 0) note(`native cache: ${reasons.join('; ')}; using ${root}`);
      return root;
    } catch (err) {
      reasons.push(
        `${root} is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  }
  throw new Error(`no writable cache directory for the embedded native addons: ${reasons.join('; ')}`);
}

function isComplete(dir: string, manifest: NativeManifest): boolean {
  try {
    return manifest.files.every((f) => {
      const st = statSync(join(dir, f.file));
      return st.isFile() && st.size === f.size;
    });
  } catch {
    return false;
  }
}

/**
 * Write size for extracted files. One big write leaves the file in the page cache as large folios, which a
 * process mapping the library then maps whole: measured on Linux 6.18/ext4, ORT's library counted 32 MB of
 * RSS instead of 20 MB for every agent started while those pages stayed cached. 64 KB writes (the kernel's
 * fault-around size) cost no time and keep the RSS to the pages the agent uses.
 */
const WRITE_CHUNK = 64 * 1024;

function writeDurably(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, 'wx', 0o755);
  try {
    let offset = 0;
    while (offset < bytes.length) {
      offset += writeSync(fd, bytes, offset, Math.min(WRITE_CHUNK, bytes.length - offset));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function lostRace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOTEMPTY' || code === 'EEXIST';
}

/**
 * Make sure `<root>/native/<key>/` holds the manifest's files, extracting them if not; returns the directory.
 * `readAsset` returns an asset's stored bytes.
 */
export function ensureExtracted(
  manifest: NativeManifest,
  readAsset: (key: string) => Uint8Array,
  root: string,
): string {
  const parent = join(root, 'native');
  const dir = join(parent, nativeDirName(manifest));
  if (isComplete(dir, manifest)) return dir;

  mkdirSync(parent, { recursive: true, mode: 0o700 });
  const temp = mkdtempSync(join(parent, '.extract-'));
  try {
    for (const f of manifest.files) {
      const stored = readAsset(f.asset);
      const bytes = f.encoding === 'br' ? brotliDecompressSync(stored) : stored;
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (bytes.length !== f.size || sha256 !== f.sha256) {
        throw new Error(
          `embedded ${f.file} does not match its manifest: expected ${f.size} bytes with sha256 ${f.sha256}, ` +
            `found ${bytes.length} bytes with sha256 ${sha256}`,
        );
      }
      writeDurably(join(temp, f.file), bytes);
    }
    fsyncDir(temp);
    // Two tries: the second only after moving aside a directory that is there but incomplete (a file deleted
    // by hand, a full disk at the time of an older build's copy).
    for (let attempt = 0; ; attempt++) {
      try {
        renameSync(temp, dir);
        fsyncDir(parent);
        return dir;
      } catch (err) {
        if (!lostRace(err)) throw err;
        if (isComplete(dir, manifest)) return dir; // another process extracted first: use its copy
        if (attempt > 0) throw new Error(`${dir} exists but is incomplete, and could not be replaced`);
        const stale = mkdtempSync(join(parent, '.stale-'));
        try {
          renameSync(dir, join(stale, 'old'));
        } catch (moveErr) {
          if ((moveErr as NodeJS.ErrnoException).code !== 'ENOENT') throw moveErr;
        }
        rmSync(stale, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** Load a native addon file the way `require` would. */
export function dlopen(path: string): unknown {
  const module = { exports: {} };
  process.dlopen(module, path);
  return module.exports;
}

/** Extract (once) and load one embedded addon. Called by the bundle's rewritten binding loaders. */
export function loadEmbeddedAddon(addon: Addon): unknown {
  if (!sea.isSea()) {
    throw new Error(`the ${addon} addon is embedded only in the single executable (build/agent)`);
  }
  const manifest = JSON.parse(sea.getAsset(MANIFEST_ASSET, 'utf8')) as NativeManifest;
  const file = manifest.files.find((f) => f.addon === addon);
  if (!file) throw new Error(`this executable embeds no ${addon} addon`);
  const root = pickCacheRoot(
    cacheRootCandidates(process.env, homedir(), dataDirFromArgv(process.argv.slice(2))),
    (line) => process.stderr.write(`edgefleet-agent: ${line}\n`),
  );
  const dir = ensureExtracted(manifest, (key) => new Uint8Array(sea.getRawAsset(key) as ArrayBuffer), root);
  return dlopen(join(dir, file.file));
}
