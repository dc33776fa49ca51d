/**
 * Build the agent as one executable for a target (Node single-executable application):
 *   1. bundle agent/sea/entry.ts to CommonJS (bundle.ts);
 *   2. prepare the target's native files from node_modules, brotli-compressing the large ORT library
 *      (cached by content), and write their manifest (agent/sea/native.ts reads it on the device);
 *   3. generate the SEA blob with the running Node, which must be the pinned version (targets.ts);
 *   4. inject the blob into the target's stripped Node base (node-base.ts) with postject.
 * Outputs `<outDir>/edgefleet-agent-<target>` and `<outDir>/edgefleet-agent-<target>.assets.json` (what is
 * embedded, with hashes). The executable is written under a temp name and renamed into place.
 * Cross-building works because steps 1–3 produce the same blob whatever the target, and step 4 only edits the
 * target binary's ELF sections. The one difference: a build for the host's own architecture also embeds V8's
 * code cache for the bundle (`useCodeCache`), made by the running Node — the pinned version, so the same V8 as
 * the base — which spares the executable parsing its 1 MB of JavaScript at every start. A cache made on
 * another architecture is not one V8 promises to accept, so cross builds go without (V8 then compiles from
 * source, as it would with a cache it refuses). The cache is made with V8's default flags and used before
 * agent/sea/entry.ts sets the executable's own: V8 refuses a cache made under other flags.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  open,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants as zlib } from 'node:zlib';
import { MANIFEST_ASSET, type NativeFile, type NativeManifest } from '../../agent/sea/native.js';
import { bundleAgent } from './bundle.js';
import { buildCacheDir, elfMachine, nodeBase } from './node-base.js';
import { NODE_VERSION, TARGET_SPECS, type Target, type TargetSpec } from './targets.js';

const run = promisify(execFile);
const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);
const require = createRequire(import.meta.url);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Node's SEA fuse (the string Node 20 looks for to know it carries a blob). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/**
 * Brotli quality for the ORT library: 5 gives 46 → 15 MB in ~10 s here (11 gives 12.7 MB in 7.5 min);
 * decompressing costs ~0.5 s, once, at the first start.
 */
const BROTLI_QUALITY = 5;

export interface BuildOptions {
  target: Target;
  /** Default: dist/ in the repository. */
  outDir?: string;
  log?: (line: string) => void;
  /**
   * Another main script built into the same kind of executable, named `<name>-<target>` (the footprint
   * bench's floor: the runtime without the agent). Default: the agent.
   */
  program?: { entry: string; name: string };
}

export interface EmbeddedAsset extends NativeFile {
  /** Where it came from, relative to node_modules. */
  source: string;
  /** Size as embedded (compressed, for `br`). */
  storedBytes: number;
}

export interface BuildResult {
  target: Target;
  executable: string;
  /** The `.assets.json` written next to it. */
  assetsFile: string;
  bytes: number;
  nodeVersion: string;
  nodeBaseStripped: boolean;
  assets: EmbeddedAsset[];
  bundleBytes: number;
  /** Whether V8's code cache for the bundle is embedded (builds for the host's architecture). */
  codeCache: boolean;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A native file as embedded: its bytes, compressed when the target says so (cached by content hash). */
async function prepareNative(
  spec: TargetSpec,
): Promise<{ assets: EmbeddedAsset[]; paths: Record<string, string> }> {
  const cacheDir = join(buildCacheDir(), 'compressed');
  await mkdir(cacheDir, { recursive: true });
  const assets: EmbeddedAsset[] = [];
  const paths: Record<string, string> = {};
  for (const n of spec.native) {
    const sourcePath = require.resolve(n.source);
    const bytes = await readFile(sourcePath);
    const digest = sha256(bytes);
    let storedPath = sourcePath;
    if (n.compress) {
      storedPath = join(cacheDir, `${digest}.q${BROTLI_QUALITY}.br`);
      const cached = await stat(storedPath).catch(() => undefined);
      if (!cached) {
        const packed = await compress(bytes, {
          params: {
            [zlib.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
            [zlib.BROTLI_PARAM_LGWIN]: 24,
            [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length,
          },
        });
        const temp = join(cacheDir, `.${digest}.${randomBytes(4).toString('hex')}.tmp`);
        await writeFile(temp, packed);
        await rename(temp, storedPath);
      }
      // A cached copy is checked like the device will check it, so a damaged cache fails here, not there.
      const unpacked = sha256(await decompress(await readFile(storedPath)));
      if (unpacked !== digest) {
        throw new Error(`${storedPath} does not decompress to ${n.source} (sha256 ${unpacked}): delete it`);
      }
    }
    paths[n.asset] = storedPath;
    assets.push({
      asset: n.asset,
      file: n.file,
      ...(n.addon ? { addon: n.addon } : {}),
      sha256: digest,
      size: bytes.length,
      encoding: n.compress ? 'br' : 'identity',
      source: n.source,
      storedBytes: (await stat(storedPath)).size,
    });
  }
  return { assets, paths };
}

/**
 * postject, as a child process: its ELF editor (LIEF) prints "Can't find string offset for section name
 * '.note…'" for each of Node's notes, which is harmless; the rest of its output is kept for failures.
 */
async function inject(executable: string, blob: string): Promise<void> {
  const cli = require.resolve('postject/dist/cli.js');
  const args = [cli, executable, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE];
  try {
    await run(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const { stderr = '', stdout = '' } = err as { stderr?: string; stdout?: string };
    const kept = `${stdout}\n${stderr}`
      .split('\n')
      .filter((line) => line.trim() && !/Can't find string offset for section name '\.note/.test(line));
    throw new Error(`postject failed to inject the SEA blob: ${kept.join('\n') || (err as Error).message}`);
  }
}

/**
 * Copy in 64 KB writes, as `cp` or an installer would. postject writes its output in one 100 MB write, which
 * leaves it in the page cache as large folios that every process running it then maps whole: measured on
 * Linux 6.18/ext4, 47 MB of the executable counted in the agent's RSS instead of 41 MB (39 MB once the page
 * cache has turned over), for as long as those pages stay cached. Same content either way.
 */
async function copyInChunks(from: string, to: string): Promise<void> {
  const bytes = await readFile(from);
  const handle = await open(to, 'wx', 0o755);
  try {
    for (let offset = 0; offset < bytes.length; ) {
      const { bytesWritten } = await handle.write(bytes, offset, Math.min(64 * 1024, bytes.length - offset));
      offset += bytesWritten;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Build `edgefleet-agent-<target>`; see the module header. */
export async function buildAgent(options: BuildOptions): Promise<BuildResult> {
  const log = options.log ?? (() => undefined);
  const spec = TARGET_SPECS[options.target];
  if (process.version !== `v${NODE_VERSION}`) {
    throw new Error(
      `the single executable embeds Node v${NODE_VERSION}, and a SEA blob only works in the Node version ` +
        `that generated it; this build runs on ${process.version}. Run it with Node ${NODE_VERSION}, or ` +
        `change NODE_VERSION and the integrities in build/agent/targets.ts.`,
    );
  }
  const outDir = resolve(options.outDir ?? join(ROOT, 'dist'));
  await mkdir(outDir, { recursive: true });
  const work = await mkdtemp(join(outDir, `.build-${options.target}-`));
  try {
    const base = await nodeBase(spec, log);

    const bundle = join(work, 'agent.cjs');
    await bundleAgent(bundle, options.program?.entry);
    const bundleBytes = (await stat(bundle)).size;

    const { assets, paths } = await prepareNative(spec);
    const manifest: NativeManifest = {
      target: spec.target,
      files: assets.map(({ source: _s, storedBytes: _b, ...file }) => file),
    };
    const manifestPath = join(work, 'manifest.json');
    await writeFile(manifestPath, JSON.stringify(manifest));

    const codeCache = spec.arch === process.arch;
    const blob = join(work, 'sea-prep.blob');
    const seaConfig = join(work, 'sea-config.json');
    await writeFile(
      seaConfig,
      JSON.stringify({
        main: bundle,
        output: blob,
        disableExperimentalSEAWarning: true,
        useCodeCache: codeCache,
        // Tried and not kept, each starting faster still but holding 6–8 MB more heap while serving (over the
        // RSS budget): a startup snapshot (which also cannot hold what needs node:http, as Node 20's snapshot
        // builder cannot load it), and a full code cache made on the device after the agent has run (a loader
        // compiling the bundle with vm.Script; the same growth shows with plain node running the bundle).
        useSnapshot: false,
        assets: { [MANIFEST_ASSET]: manifestPath, ...paths },
      }),
    );
    await run(process.execPath, ['--experimental-sea-config', seaConfig], { cwd: work });

    const name = `${options.program?.name ?? 'edgefleet-agent'}-${spec.target}`;
    const temp = join(work, name);
    await copyFile(base.path, temp);
    await chmod(temp, 0o755);
    await inject(temp, blob);
    const machine = await elfMachine(temp);
    if (machine !== spec.elfMachine) {
      throw new Error(`${name}: expected ELF machine ${spec.elfMachine}, the result has ${machine}`);
    }

    const executable = join(outDir, name);
    const assetsFile = `${executable}.assets.json`;
    const bytes = (await stat(temp)).size;
    const result: BuildResult = {
      target: spec.target,
      executable,
      assetsFile,
      bytes,
      nodeVersion: NODE_VERSION,
      nodeBaseStripped: base.stripped,
      assets,
      bundleBytes,
      codeCache,
    };
    // Next to the executable, so without this machine's paths.
    const { executable: _e, assetsFile: _a, ...described } = result;
    await writeFile(
      join(work, 'assets.json'),
      `${JSON.stringify({ executable: name, ...described }, null, 2)}\n`,
    );
    const final = join(work, `${name}.out`);
    await copyInChunks(temp, final);
    await rename(final, executable);
    await rename(join(work, 'assets.json'), assetsFile);
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
