/**
 * `edgefleet-agent doctor` as operators run it: a child process over real enrolled data dirs, against a real
 * fleet (HTTP API and embedded broker), with real ONNX Runtime sessions for the provider probes.
 */
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KNOWN_PROFILES } from '../../../agent/known-profiles.js';
import { enrollAgent } from '../../support/agent-process.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { runToExit } from '../../support/process.js';

const AGENT_BIN = fileURLToPath(new URL('../../../bin/edgefleet-agent.js', import.meta.url));
/** Present only where ORT's CUDA provider was installed on purpose (README: Installing on a device). */
const CUDA_PROVIDER_INSTALLED = existsSync(
  fileURLToPath(
    new URL(
      `../../../node_modules/onnxruntime-node/bin/napi-v6/linux/${process.arch}/libonnxruntime_providers_cuda.so`,
      import.meta.url,
    ),
  ),
);

/** Profiles for whatever this machine is, so the suite runs the same on x64 and arm64. */
const base = {
  description: 'doctor test',
  arch: process.arch,
  intraOpThreads: 1,
  interOpThreads: 1,
  memoryBudgetBytes: 256 * 1024 * 1024,
  maxModelBytes: 64 * 1024 * 1024,
};
const CPU_PROFILE = { ...base, id: 'doctor-cpu', executionProviders: [{ name: 'cpu', options: {} }] };
const CUDA_PROFILE = {
  ...base,
  id: 'doctor-cuda',
  executionProviders: [
    { name: 'cuda', options: { deviceId: 0 } },
    { name: 'cpu', options: {} },
  ],
};

let env: TestFleet;
let dir: string;
let cpuDir: string;
let cudaDir: string;

beforeAll(async () => {
  env = await startTestFleet([CPU_PROFILE, CUDA_PROFILE]);
  dir = await mkdtemp(join(tmpdir(), 'edgefleet-doctor-'));
  cpuDir = join(dir, 'cpu');
  cudaDir = join(dir, 'cuda');
  for (const [dataDir, profile] of [
    [cpuDir, CPU_PROFILE.id],
    [cudaDir, CUDA_PROFILE.id],
  ] as const) {
    const { token } = await env.api.enrollmentToken({ profile });
    await enrollAgent({ server: env.fleet.httpUrl, token, dataDir });
  }
});

afterAll(async () => {
  await env?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function doctor(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runToExit(process.execPath, [AGENT_BIN, 'doctor', ...args]);
}

/** A loopback port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function doctorJson(args: string[]) {
  const result = await doctor([...args, '--json']);
  let json: any;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    throw new Error(
      `doctor --json printed no JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`,
    );
  }
  const byName = new Map<string, { verdict: string; detail: string }>(
    json.checks.map((c: any) => [c.name, c]),
  );
  return { ...result, json, byName };
}

describe('edgefleet-agent doctor', () => {
  it('an enrolled CPU device: every check ok, exit 0', async () => {
    const { code, json, byName, stderr } = await doctorJson(['--data-dir', cpuDir]);
    expect(code, stderr).toBe(0);
    expect(json.ok).toBe(true);
    expect(json.deviceId).toMatch(/^dev-/);
    expect([...byName.keys()]).toEqual([
      'architecture',
      'glibc',
      'profile',
      'provider cpu',
      'disk',
      'server',
      'clock',
      'broker',
    ]);
    for (const [name, check] of byName) expect(check.verdict, `${name}: ${check.detail}`).toBe('ok');
    expect(byName.get('profile')!.detail).toBe(`doctor-cpu (enrolled as ${json.deviceId})`);
    expect(byName.get('broker')!.detail).toMatch(
      new RegExp(`^${env.fleet.mqttUrl.replace(/[.]/g, '\\.')} accepts connections \\(`),
    );
    expect(byName.get('server')!.detail).toMatch(/answers \(edgefleet \S+\) in /);
  });

  it('prints one line per check and a summary for people', async () => {
    const { code, stdout } = await doctor(['--data-dir', cpuDir]);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^edgefleet-agent doctor: data dir .*cpu, device dev-/);
    expect(lines.slice(1, -1).every((l) => /^ok {4}\S/.test(l))).toBe(true);
    expect(lines.at(-1)).toBe('no check failed (0 warnings)');
  });

  it('a CUDA profile: each provider is tried alone, CUDA shows why it failed, CPU carries on', async () => {
    const { code, byName } = await doctorJson(['--data-dir', cudaDir]);
    const cuda = byName.get('provider cuda')!;
    const cpu = byName.get('provider cpu')!;
    expect(cpu.verdict).toBe('ok');
    if (CUDA_PROVIDER_INSTALLED) {
      expect(['ok', 'warn']).toContain(cuda.verdict);
    } else {
      expect(cuda.verdict).toBe('warn');
      expect(cuda.detail).toMatch(
        /^failed \(deviceId=0\): .*Failed to load shared library; doctor-cuda runs on cpu \(ONNX Runtime's cuda provider libraries/,
      );
      expect(code).toBe(0);
    }
  });

  it('a broker that does not answer fails the check and the exit code', async () => {
    const port = await closedPort();

    const brokenDir = join(dir, 'broker-gone');
    await cp(cpuDir, brokenDir, { recursive: true });
    const identityPath = join(brokenDir, 'agent.json');
    const identity = JSON.parse(await readFile(identityPath, 'utf8'));
    identity.mqtt.url = `mqtt://127.0.0.1:${port}`;
    await writeFile(identityPath, JSON.stringify(identity));

    const { code, json, byName } = await doctorJson(['--data-dir', brokenDir]);
    expect(code).toBe(1);
    expect(json.ok).toBe(false);
    expect(byName.get('broker')).toEqual({
      name: 'broker',
      verdict: 'fail',
      detail: `cannot connect to mqtt://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
    });
    expect(byName.get('server')!.verdict).toBe('ok');
    const human = await doctor(['--data-dir', brokenDir]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/\nFAIL {2}broker +cannot connect/);
    expect(human.stdout).toMatch(/\n1 check failed, 0 warnings\n$/);
  });

  it('before enrollment, with --server: checks the profiles for this arch and the fleet broker, warns only', async () => {
    const empty = join(dir, 'not-enrolled');
    const { code, json, byName } = await doctorJson(['--data-dir', empty, '--server', env.fleet.httpUrl]);
    expect(code).toBe(0);
    expect(json.deviceId).toBeNull();
    const ids = KNOWN_PROFILES.filter((p) => p.arch === process.arch).map((p) => p.id);
    expect(ids.length).toBeGreaterThan(0);
    expect(byName.get('profile')).toMatchObject({
      verdict: 'warn',
      detail: `not enrolled (no ${join(empty, 'agent.json')}); profiles for ${process.arch}: ${ids.join(', ')}`,
    });
    // The built-in profiles' providers, each tried once.
    expect([...byName.keys()].filter((n) => n.startsWith('provider '))).toContain('provider cpu');
    expect(byName.get('disk')!.detail).toContain('does not exist yet');
    expect(byName.get('server')!.verdict).toBe('ok');
    expect(byName.get('clock')!.verdict).toBe('ok');
    expect(byName.get('broker')).toMatchObject({
      verdict: 'ok',
      detail: expect.stringContaining(`${env.fleet.mqttUrl} accepts connections`),
    });
  });

  it('an unreachable --server fails; without any server the fleet checks say they were not done', async () => {
    const empty = join(dir, 'not-enrolled');
    const port = await closedPort();
    const gone = await doctorJson(['--data-dir', empty, '--server', `http://127.0.0.1:${port}`]);
    expect(gone.code).toBe(1);
    expect(gone.byName.get('server')).toEqual({
      name: 'server',
      verdict: 'fail',
      detail: `cannot reach http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
    });
    const none = await doctorJson(['--data-dir', empty]);
    expect(none.code).toBe(0);
    expect(none.byName.get('clock')!.detail).toBe('not checked: no fleet server known to compare with');
    expect(none.byName.get('broker')!.verdict).toBe('warn');
  });
});
