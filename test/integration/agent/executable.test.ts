/**
 * The linux-x64 single executable, built here from this checkout (build/agent; the Node base package is
 * cached per user, so only the first build fetches it), run as the device agent — never `node agent/...`:
 * it enrolls, takes a rollout from a real fleet, answers `/v2/models/…/infer` with what ONNX Runtime computes
 * in this process, survives a SIGKILL and restart (serving the same model, from disk, with the fleet down so
 * nothing can be downloaded), and two first starts at once over an empty cache both come up on one copy of
 * the native addons.
 */

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { versionLine } from '../../../agent/version.js';
import { type BuildResult, buildAgent } from '../../../build/agent/build.js';
import { TARGET_SPECS } from '../../../build/agent/targets.js';
import { AgentProcess, enrollAgent, expectServes } from '../../support/agent-process.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { directRun, mlp, randomBatch } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const onHost = process.platform === 'linux' && process.arch === 'x64';

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Every file under `dir` with its inode and mtime: unchanged if nothing rewrote it. */
async function fileStamps(dir: string): Promise<Record<string, string>> {
  const stamps: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const st = await stat(path);
    stamps[path] = `${st.ino}:${st.mtimeMs}:${st.size}`;
  }
  return stamps;
}

/** The one extracted directory under `<cache>/native`, checked against the x64 files in node_modules. */
async function expectOneExtractedCopy(cacheDir: string): Promise<void> {
  const entries = await readdir(join(cacheDir, 'native'));
  expect(entries, 'one extracted copy and no temp directories left').toHaveLength(1);
  const dir = join(cacheDir, 'native', entries[0]!);
  for (const n of TARGET_SPECS['linux-x64'].native) {
    expect(await sha256(join(dir, n.file)), n.file).toBe(await sha256(require.resolve(n.source)));
  }
}

describe.skipIf(!onHost)('the linux-x64 single executable as the device agent', () => {
  let work: string;
  let build: BuildResult;
  let env: TestFleet;
  let exe: string[];
  const agents: AgentProcess[] = [];
  const model = mlp(17);
  const rows = 4;
  const data = randomBatch(5, rows);
  let expected: Float32Array;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'edgefleet-exe-'));
    // Every process of this file (enroll included) extracts into this file's own cache.
    process.env.EDGEFLEET_CACHE_DIR = join(work, 'cache');
    build = await buildAgent({ target: 'linux-x64', outDir: join(work, 'dist') });
    exe = [build.executable];
    env = await startTestFleet();
    expected = await directRun(model, data, rows);
  }, 600_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    await env?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const servesV1 = (agent: AgentProcess) =>
    expectServes(agent, 'classifier', { version: 1, data, rows, expected });

  it('--version names the agent, Node, ONNX Runtime and the target, without extracting anything', async () => {
    const cacheDir = join(work, 'version-cache');
    const { stdout } = await run(build.executable, ['--version'], {
      env: { ...process.env, EDGEFLEET_CACHE_DIR: cacheDir },
    });
    expect(stdout.trim()).toBe(versionLine());
    expect(stdout).toMatch(
      /^edgefleet-agent \S+ \(node v20\.20\.2, onnxruntime \d+\.\d+\.\d+, linux-x64\)\n$/,
    );
    await expect(stat(cacheDir)).rejects.toThrow(/ENOENT/);
  });

  it('embeds V8 code cache for its bundle (built for the host architecture)', () => {
    expect(build.codeCache).toBe(true);
  });

  it('enrolls, receives a rollout and serves what ONNX Runtime computes', async () => {
    const { token } = await env.api.enrollmentToken({ tags: { site: 'exe' } });
    const dataDir = join(work, 'device');
    await enrollAgent({ server: env.fleet.httpUrl, token, dataDir, command: exe });
    // Enrolling needs neither ONNX Runtime nor LevelDB: nothing extracted yet (the first command on a device).
    await expect(stat(join(process.env.EDGEFLEET_CACHE_DIR!, 'native'))).rejects.toThrow(/ENOENT/);
    const agent = await AgentProcess.start({ dataDir, command: exe, telemetryIntervalMs: 500 });
    agents.push(agent);

    await env.api.pushModel('classifier', model);
    const rollout = await env.api.createRollout('classifier', 1, { tags: { site: 'exe' } });
    const settled = await env.api.settledRollout(rollout.id);
    expect(settled.phase, JSON.stringify(settled.devices)).toBe('succeeded');
    await servesV1(agent);
    // Nothing in the bundle asked the SEA's require for a module from disk (Node warns when one does).
    expect(agent.stderr).not.toMatch(/only supports loading built-in modules/);
    // What it loaded is byte-for-byte the x64 addons of this checkout.
    await expectOneExtractedCopy(process.env.EDGEFLEET_CACHE_DIR!);
  });

  it('after SIGKILL it starts again and serves the same model from disk, with the fleet down', async () => {
    const first = agents.pop()!;
    const dataDir = join(work, 'device');
    const models = join(dataDir, 'models');
    const before = await fileStamps(models);
    expect(Object.keys(before).some((p) => p.endsWith('model.onnx'))).toBe(true);

    await env.restart(async () => {
      await first.kill('SIGKILL');
      // No fleet: nothing can be downloaded, so whatever it serves came from its own disk.
      const again = await AgentProcess.start({ dataDir, command: exe, telemetryIntervalMs: 500 });
      agents.push(again);
      expect(again.deviceId).toBe(first.deviceId);
      await servesV1(again);
    });
    expect(await fileStamps(models)).toEqual(before);
    const device = await waitFor(async () => {
      const d = await env.api.device(first.deviceId);
      return d.status === 'online' && d.models.some((m: { version: number }) => m.version === 1)
        ? d
        : undefined;
    }, 'the restarted executable to report v1 to the fleet');
    expect(device.models).toHaveLength(1);
    expect(device.models[0]).toMatchObject({ name: 'classifier', version: 1, executionProvider: 'cpu' });
  });

  it('two first starts at once over an empty cache both load the addons, from one extracted copy', async () => {
    const ids: string[] = [];
    const dataDirs = [join(work, 'race-a'), join(work, 'race-b')];
    for (const dataDir of dataDirs) {
      const { token } = await env.api.enrollmentToken({ tags: { site: 'race' } });
      ids.push(await enrollAgent({ server: env.fleet.httpUrl, token, dataDir, command: exe }));
    }
    const cacheDir = join(work, 'race-cache');
    const racing = await Promise.all(
      dataDirs.map((dataDir) =>
        AgentProcess.start({ dataDir, command: exe, env: { EDGEFLEET_CACHE_DIR: cacheDir } }),
      ),
    );
    agents.push(...racing);
    await expectOneExtractedCopy(cacheDir);

    const rollout = await env.api.createRollout('classifier', 1, { devices: ids });
    const settled = await env.api.settledRollout(rollout.id);
    expect(settled.phase, JSON.stringify(settled.devices)).toBe('succeeded');
    for (const agent of racing) await servesV1(agent);
  });
});
