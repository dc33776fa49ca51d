/**
 * The linux-arm64 single executable, cross-built on this (x64) machine from this checkout: an aarch64 ELF
 * that embeds the arm64 addons of node_modules and none of the x64 ones, and whose `--version` runs under
 * qemu-user (`qemu-aarch64 -L /usr/aarch64-linux-gnu`; Debian: qemu-user libc6-arm64-cross
 * libstdc++6-arm64-cross libgcc-s1-arm64-cross, which .ci/run installs). Only `--version` runs: ONNX
 * Runtime's CPU probe crashes under qemu-user as soon as its library loads, which a real arm64 CPU does not.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORT_VERSION } from '../../../agent/version.js';
import { type BuildResult, buildAgent } from '../../../build/agent/build.js';
import { NODE_VERSION, TARGET_SPECS } from '../../../build/agent/targets.js';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const SYSROOT = '/usr/aarch64-linux-gnu';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The arm64 and x64 copies of each embedded file, from node_modules (same order as the target's list). */
async function nodeModulesPairs() {
  const arm = TARGET_SPECS['linux-arm64'].native;
  const x64 = TARGET_SPECS['linux-x64'].native;
  return Promise.all(
    arm.map(async (n, i) => ({
      file: n.file,
      arm64: await readFile(require.resolve(n.source)),
      x64: await readFile(require.resolve(x64[i]!.source)),
    })),
  );
}

describe('the linux-arm64 single executable, cross-built', () => {
  let work: string;
  let build: BuildResult;
  let binary: Buffer;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'edgefleet-exe-arm64-'));
    build = await buildAgent({ target: 'linux-arm64', outDir: join(work, 'dist') });
    binary = await readFile(build.executable);
  }, 600_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('is a 64-bit little-endian aarch64 ELF executable', () => {
    expect(binary.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    expect(binary[4], 'EI_CLASS: ELFCLASS64').toBe(2);
    expect(binary[5], 'EI_DATA: little-endian').toBe(1);
    expect(binary.readUInt16LE(16), 'e_type: ET_EXEC or ET_DYN').toBeOneOf([2, 3]);
    expect(binary.readUInt16LE(18), 'e_machine: EM_AARCH64').toBe(183);
  });

  it('carries no V8 code cache made on this x64 host (not one V8 promises to accept on arm64)', () => {
    expect(build.codeCache).toBe(false);
  });

  it('embeds the arm64 addons of node_modules, as its manifest says, and none of the x64 ones', async () => {
    const pairs = await nodeModulesPairs();
    const manifest = JSON.parse(await readFile(build.assetsFile, 'utf8')) as Pick<
      BuildResult,
      'target' | 'assets'
    >;
    expect(manifest.target).toBe('linux-arm64');
    expect(manifest.assets.map((a) => a.file)).toEqual(pairs.map((p) => p.file));
    for (const [i, pair] of pairs.entries()) {
      const asset = manifest.assets[i]!;
      expect(sha256(pair.arm64), `${pair.file}: arm64 and x64 differ`).not.toBe(sha256(pair.x64));
      expect(asset.sha256, `${pair.file} in the manifest`).toBe(sha256(pair.arm64));
      expect(asset.size).toBe(pair.arm64.length);
      // Stored as is (the .node files): the bytes themselves are in the executable; the x64 ones are not.
      // The compressed ORT library is checked by the executable itself: extraction verifies its sha256.
      if (asset.encoding === 'identity') {
        expect(binary.indexOf(pair.arm64), `${pair.file} (arm64) in the executable`).toBeGreaterThan(0);
        expect(binary.indexOf(pair.x64), `${pair.file} (x64) in the executable`).toBe(-1);
      }
    }
  });

  it('runs `--version` under qemu-user and reports linux-arm64', async () => {
    const direct = process.platform === 'linux' && process.arch === 'arm64';
    const [cmd, ...args] = direct
      ? [build.executable, '--version']
      : ['qemu-aarch64', '-L', SYSROOT, build.executable, '--version'];
    let stdout: string;
    try {
      ({ stdout } = await run(cmd!, args, { timeout: 120_000 }));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(
          'this test runs the arm64 executable under qemu-user: apt-get install qemu-user libc6-arm64-cross ' +
            'libstdc++6-arm64-cross libgcc-s1-arm64-cross (.ci/run installs them)',
        );
      }
      throw err;
    }
    expect(stdout).toBe(
      `edgefleet-agent 0.1.0 (node v${NODE_VERSION}, onnxruntime ${ORT_VERSION}, linux-arm64)\n`,
    );
  }, 180_000);
});
