/**
 * The Node binary a single executable is made from: the official build published on the npm registry as
 * `node-linux-<arch>@<NODE_VERSION>`, fetched with `npm pack` (so the build needs the registry only, and can
 * fetch arm64 on x64), checked against the pinned integrity, unpacked and stripped. Everything is cached,
 * keyed by the integrity; cache files are written under temp names and renamed over (same content), so
 * parallel builds are safe.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NODE_VERSION, type TargetSpec } from './targets.js';

const run = promisify(execFile);

/** `$EDGEFLEET_BUILD_CACHE`, else `$XDG_CACHE_HOME/edgefleet/build`, else `~/.cache/edgefleet/build`. */
export function buildCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['EDGEFLEET_BUILD_CACHE']) return env['EDGEFLEET_BUILD_CACHE'];
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'edgefleet', 'build');
}

async function sha512(path: string): Promise<string> {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha512-${hash.digest('base64')}`;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Fetch (or reuse) the package tarball; returns its path, verified. */
async function fetchTarball(spec: TargetSpec, dir: string, log: (line: string) => void): Promise<string> {
  const name = `${spec.nodePackage}-${NODE_VERSION}.tgz`;
  const path = join(dir, name);
  if ((await exists(path)) && (await sha512(path)) === spec.nodeIntegrity) return path;

  log(`fetching ${spec.nodePackage}@${NODE_VERSION} from the npm registry`);
  const temp = await mkdtemp(join(dir, '.pack-'));
  try {
    // cwd outside the project: no project .npmrc, no workspace; the user's registry settings still apply.
    const { stdout } = await run('npm', ['pack', `${spec.nodePackage}@${NODE_VERSION}`, '--json'], {
      cwd: temp,
      maxBuffer: 64 * 1024 * 1024,
    });
    const [packed] = JSON.parse(stdout) as { filename: string; integrity: string }[];
    if (!packed) throw new Error(`npm pack ${spec.nodePackage}@${NODE_VERSION} reported nothing`);
    const fetched = join(temp, packed.filename);
    const actual = await sha512(fetched);
    if (packed.integrity !== spec.nodeIntegrity || actual !== spec.nodeIntegrity) {
      throw new Error(
        `${spec.nodePackage}@${NODE_VERSION}: expected integrity ${spec.nodeIntegrity}, ` +
          `npm reported ${packed.integrity} and the file hashes to ${actual}`,
      );
    }
    await rename(fetched, path);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  return path;
}

/** First strip tool that runs; undefined if none does. */
async function findStrip(spec: TargetSpec): Promise<string | undefined> {
  const candidates = spec.arch === process.arch ? ['strip', ...spec.stripTools] : spec.stripTools;
  for (const tool of candidates) {
    try {
      await run(tool, ['--version']);
      return tool;
    } catch {
      // not installed: try the next
    }
  }
  return undefined;
}

export interface NodeBase {
  /** The (stripped, when a strip tool was found) Node binary, cached: copy it before changing it. */
  path: string;
  stripped: boolean;
}

/**
 * The target's Node binary, fetched, verified, unpacked and stripped — or reused from the cache, which keeps
 * the verified tarball and the binary ready to inject (not the unstripped one when a strip tool exists).
 */
export async function nodeBase(spec: TargetSpec, log: (line: string) => void): Promise<NodeBase> {
  const dir = join(buildCacheDir(), 'node-bases');
  await mkdir(dir, { recursive: true });
  // The integrity names the content; its first hex characters name the cached binaries.
  const key = Buffer.from(spec.nodeIntegrity.slice('sha512-'.length), 'base64').toString('hex').slice(0, 16);
  const strip = await findStrip(spec);
  const binary = join(dir, `${spec.nodePackage}-${NODE_VERSION}-${key}${strip ? '-stripped' : ''}`);
  if (!strip) {
    log(
      `note: no strip tool for ${spec.target} (tried ${spec.stripTools.join(', ')}): the Node base stays ` +
        `unstripped (12-14 MB more); on Debian: apt-get install ` +
        `binutils-${spec.arch === 'arm64' ? 'aarch64' : 'x86-64'}-linux-gnu`,
    );
  }
  if (!(await exists(binary))) {
    const tarball = await fetchTarball(spec, dir, log);
    const temp = await mkdtemp(join(dir, '.unpack-'));
    try {
      await run('tar', ['-xzf', tarball, '-C', temp, 'package/bin/node']);
      const node = join(temp, 'package', 'bin', 'node');
      if (strip) await run(strip, [node]);
      await rename(node, binary);
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
  }
  return { path: binary, stripped: Boolean(strip) };
}

/** ELF e_machine of a file (throws when it is not a 64-bit little-endian ELF). */
export async function elfMachine(path: string): Promise<number> {
  const handle = await open(path, 'r');
  const header = Buffer.alloc(20);
  try {
    await handle.read(header, 0, 20, 0);
  } finally {
    await handle.close();
  }
  if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) {
    throw new Error(`${path} is not a 64-bit little-endian ELF file`);
  }
  return header.readUInt16LE(18);
}
