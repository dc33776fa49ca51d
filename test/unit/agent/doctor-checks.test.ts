/**
 * Doctor's verdicts, table by table, and its report: what each measured fact turns into, where ok turns into
 * warn and into fail, and that only a failure fails the report.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  architectureCheck,
  brokerAddress,
  brokerCheck,
  type CheckResult,
  clockCheck,
  compareVersions,
  diskCheck,
  type Enrollment,
  estimateSkewMs,
  formatBytes,
  formatReport,
  glibcCheck,
  type ProbeResult,
  profileCheck,
  profilesToCheck,
  providerChecks,
  providerKey,
  report,
  type ServerProbe,
  serverCheck,
} from '../../../agent/doctor-checks.js';
import { DOCTOR_MODEL } from '../../../agent/doctor-model.js';
import { KNOWN_PROFILES } from '../../../agent/known-profiles.js';
import { type FirmwareProfile, parseFirmwareProfile } from '../../../shared/firmware-profile.js';
import { seededMlp } from '../../../shared/onnx/mlp.js';

/** A valid profile through the real schema (options and defaults as a profile file would have them). */
const profile = (id: string, arch: 'x64' | 'arm64', eps: string[], maxModelBytes = 1024): FirmwareProfile =>
  parseFirmwareProfile({
    id,
    description: '',
    arch,
    executionProviders: eps.map((name) => ({ name, options: name === 'cpu' ? {} : { deviceId: 0 } })),
    intraOpThreads: 1,
    memoryBudgetBytes: 1 << 20,
    maxModelBytes,
  });

const cpuOnly = profile('box-cpu', 'x64', ['cpu']);
const cuda = profile('box-cuda', 'x64', ['cuda', 'cpu']);
const cudaOnly = profile('box-cuda-only', 'x64', ['cuda']);
const jetson = profile('jetson', 'arm64', ['tensorrt', 'cuda', 'cpu']);

const LOADED: ProbeResult = { loaded: true, runMs: 0.4 };
const NO_CUDA: ProbeResult = {
  loaded: false,
  reason: 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library',
};

function probes(entries: [FirmwareProfile, string, ProbeResult][]): Map<string, ProbeResult> {
  return new Map(
    entries.map(([p, name, r]) => [providerKey(p.executionProviders.find((e) => e.name === name)!), r]),
  );
}

describe('architecture and C library', () => {
  it.each([
    ['x64', 'x86_64', 'ok'],
    ['arm64', 'aarch64', 'ok'],
    ['arm64', 'arm64', 'ok'],
    ['x64', 'aarch64', 'warn'],
    ['arm', 'armv7l', 'fail'],
    ['ia32', 'i686', 'fail'],
  ])('node %s on a %s kernel: %s', (arch, machine, verdict) => {
    const check = architectureCheck(arch, machine);
    expect(check.verdict).toBe(verdict);
    expect(check.detail).toContain(machine);
  });

  it.each([
    ['2.36', 'ok'],
    ['2.28', 'ok'],
    ['2.27', 'fail'],
    ['2.3', 'fail'],
    ['3.0', 'ok'],
  ])('glibc %s: %s', (version, verdict) => {
    expect(glibcCheck('linux', version)).toMatchObject({ name: 'glibc', verdict });
  });

  it('no glibc on Linux (musl) fails; other systems do not need it', () => {
    expect(glibcCheck('linux', undefined)).toMatchObject({
      verdict: 'fail',
      detail: expect.stringMatching(/musl/),
    });
    expect(glibcCheck('darwin', undefined).verdict).toBe('ok');
  });

  it('compares versions numerically, not as text', () => {
    expect(compareVersions('2.28', '2.3')).toBeGreaterThan(0);
    expect(compareVersions('2.28', '2.28.0')).toBe(0);
    expect(compareVersions('2.9', '2.28')).toBeLessThan(0);
  });
});

describe('profile', () => {
  const enrolled = (p: FirmwareProfile): Enrollment => ({
    state: 'enrolled',
    deviceId: 'dev-1',
    profile: p,
    serverUrl: 'http://fleet',
    mqttUrl: 'mqtt://fleet',
  });

  it('an enrolled device checks its own profile, which must be for its architecture', () => {
    expect(profilesToCheck(enrolled(cuda), 'x64', [cpuOnly, cuda])).toEqual([cuda]);
    expect(profileCheck(enrolled(cuda), 'x64', [cuda])).toMatchObject({
      verdict: 'ok',
      detail: 'box-cuda (enrolled as dev-1)',
    });
    expect(profileCheck(enrolled(jetson), 'x64', [jetson])).toMatchObject({
      verdict: 'fail',
      detail: expect.stringMatching(/jetson, a profile for arm64, but this device is x64/),
    });
  });

  it('a device not enrolled yet checks every profile for its architecture, and warns', () => {
    const notEnrolled: Enrollment = { state: 'not_enrolled', path: '/d/agent.json' };
    const candidates = profilesToCheck(notEnrolled, 'x64', [jetson, cpuOnly, cuda]);
    expect(candidates).toEqual([cpuOnly, cuda]);
    expect(profileCheck(notEnrolled, 'x64', candidates)).toMatchObject({
      verdict: 'warn',
      detail: 'not enrolled (no /d/agent.json); profiles for x64: box-cpu, box-cuda',
    });
    expect(profileCheck(notEnrolled, 'x64', []).verdict).toBe('fail');
  });

  it('an unreadable enrollment fails with the reason', () => {
    expect(
      profileCheck({ state: 'unreadable', path: '/d/agent.json', reason: 'permission denied' }, 'x64', []),
    ).toMatchObject({ verdict: 'fail', detail: 'cannot read /d/agent.json: permission denied' });
  });

  it('the built-in profiles are exactly the files in firmware-profiles/ (add a new one to both)', () => {
    const files = readdirSync(new URL('../../../firmware-profiles/', import.meta.url)).filter((f) =>
      f.endsWith('.json'),
    );
    expect(KNOWN_PROFILES.map((p) => `${p.id}.json`).sort()).toEqual(files.sort());
  });
});

describe('execution providers', () => {
  it('probe with the seeded MLP the ONNX encoder makes', () => {
    expect(
      Buffer.from(DOCTOR_MODEL.bytes()).equals(Buffer.from(seededMlp({ seed: 7, sizes: [4, 8, 2] }))),
    ).toBe(true);
  });

  it('one line per distinct provider, in profile order', () => {
    const checks = providerChecks(
      [cpuOnly, cuda],
      probes([
        [cuda, 'cuda', NO_CUDA],
        [cpuOnly, 'cpu', LOADED],
      ]),
    );
    expect(checks.map((c) => c.name)).toEqual(['provider cpu', 'provider cuda']);
  });

  it('a provider that loads is ok and says how long the test model ran', () => {
    const [cpu] = providerChecks([cpuOnly], probes([[cpuOnly, 'cpu', LOADED]]));
    expect(cpu).toEqual({
      name: 'provider cpu',
      verdict: 'ok',
      detail: 'loaded; ran the test model in 0.4 ms',
    });
  });

  it('a failing provider with a fallback warns, names ORT reason, what runs instead and where to get CUDA', () => {
    const [cudaLine, cpuLine] = providerChecks(
      [cuda],
      probes([
        [cuda, 'cuda', NO_CUDA],
        [cuda, 'cpu', LOADED],
      ]),
    );
    expect(cudaLine!.verdict).toBe('warn');
    expect(cudaLine!.detail).toMatch(
      /^failed \(deviceId=0\): OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library; box-cuda runs on cpu \(ONNX Runtime's cuda provider libraries.*README/,
    );
    expect(cpuLine!.verdict).toBe('ok');
  });

  it('a failing provider that leaves a profile with none fails', () => {
    const [line] = providerChecks([cudaOnly], probes([[cudaOnly, 'cuda', NO_CUDA]]));
    expect(line).toMatchObject({
      verdict: 'fail',
      detail: expect.stringContaining('box-cuda-only has no provider that loads'),
    });
  });

  it('a provider shared by two profiles fails when either is left with none', () => {
    const checks = providerChecks(
      [cuda, cudaOnly],
      probes([
        [cuda, 'cuda', NO_CUDA],
        [cuda, 'cpu', LOADED],
      ]),
    );
    expect(checks.find((c) => c.name === 'provider cuda')).toMatchObject({
      verdict: 'fail',
      detail: expect.stringContaining('box-cuda runs on cpu, box-cuda-only has no provider that loads'),
    });
  });

  it('a provider not tried is a warning, not a pass', () => {
    expect(providerChecks([cpuOnly], new Map())[0]!.verdict).toBe('warn');
  });
});

describe('disk', () => {
  const MiB = 1024 * 1024;
  it.each([
    [300, 'ok'],
    [200, 'ok'],
    [199, 'warn'],
    [100, 'warn'],
    [99, 'fail'],
  ])('%i MiB free for two 100 MiB slots: %s', (free, verdict) => {
    const check = diskCheck({
      path: '/d',
      measuredAt: '/d',
      freeBytes: free * MiB,
      maxModelBytes: 100 * MiB,
    });
    expect(check.verdict).toBe(verdict);
    expect(check.detail).toContain('two model slots need 200.0 MiB');
  });

  it('says where it measured when the data dir does not exist yet', () => {
    expect(
      diskCheck({ path: '/var/lib/x', measuredAt: '/var/lib', freeBytes: 10, maxModelBytes: 1 }).detail,
    ).toBe('10 B free in /var/lib (/var/lib/x does not exist yet); two model slots need 2 B');
  });

  it('formats bytes in binary units', () => {
    expect([0, 1023, 1024, 1536, 2 ** 31].map(formatBytes)).toEqual([
      '0 B',
      '1023 B',
      '1.0 KiB',
      '1.5 KiB',
      '2.0 GiB',
    ]);
  });
});

describe('fleet server and clock', () => {
  const reachable = (skewMs: number | null): ServerProbe => ({
    state: 'reachable',
    url: 'http://fleet:8080',
    version: '0.1.0',
    latencyMs: 3,
    skewMs,
  });

  it('estimates skew against the middle of the Date header second', () => {
    const date = 'Mon, 30 Nov 2026 12:00:00 GMT';
    const t = Date.parse(date);
    expect(estimateSkewMs(t + 400, t + 600, date)).toBe(0);
    expect(estimateSkewMs(t + 10_500, t + 10_500, date)).toBe(10_000);
    expect(estimateSkewMs(t - 4_500, t - 4_500, date)).toBe(-5_000);
    expect(estimateSkewMs(t, t, null)).toBeNull();
    expect(estimateSkewMs(t, t, 'yesterday-ish')).toBeNull();
  });

  it.each([
    [0, 'ok'],
    [5_000, 'ok'],
    [-5_001, 'warn'],
    [60_000, 'warn'],
    [300_001, 'fail'],
  ])('skew %i ms: %s', (skew, verdict) => {
    expect(clockCheck(reachable(skew)).verdict).toBe(verdict);
  });

  it('says which way the clock is off', () => {
    expect(clockCheck(reachable(-12_000)).detail).toMatch(/^12\.0 s behind the fleet's clock/);
    expect(clockCheck(reachable(7_000)).detail).toMatch(/^7\.0 s ahead of the fleet's clock/);
  });

  it('no server known, or none reachable: the clock is not checked, and says so', () => {
    expect(clockCheck({ state: 'unknown' })).toMatchObject({
      verdict: 'warn',
      detail: expect.stringMatching(/^not checked/),
    });
    expect(clockCheck({ state: 'unreachable', url: 'http://fleet', reason: 'ECONNREFUSED' })).toMatchObject({
      verdict: 'warn',
      detail: 'not checked: no time from http://fleet',
    });
    expect(clockCheck(reachable(null)).verdict).toBe('warn');
  });

  it('server: known and answering is ok, unreachable fails, unknown warns', () => {
    expect(serverCheck(reachable(0))).toEqual({
      name: 'server',
      verdict: 'ok',
      detail: 'http://fleet:8080 answers (edgefleet 0.1.0) in 3.0 ms',
    });
    expect(serverCheck({ state: 'unreachable', url: 'http://fleet', reason: 'ENOTFOUND' }).verdict).toBe(
      'fail',
    );
    expect(serverCheck({ state: 'unknown' }).verdict).toBe('warn');
  });
});

describe('broker', () => {
  it.each([
    ['mqtt://fleet', { host: 'fleet', port: 1883 }],
    ['mqtt://fleet:2883', { host: 'fleet', port: 2883 }],
    ['mqtts://fleet', { host: 'fleet', port: 8883 }],
    ['tcp://10.0.0.1', { host: '10.0.0.1', port: 1883 }],
    ['wss://fleet/mqtt', { host: 'fleet', port: 443 }],
    ['mqtt://[::1]:1884', { host: '::1', port: 1884 }],
    ['http://fleet', { error: 'unknown scheme http:' }],
    ['fleet:1883', { error: 'unknown scheme fleet:' }],
    ['not a url', { error: 'not a URL' }],
  ])('%s', (url, expected) => {
    expect(brokerAddress(url)).toEqual(expected);
  });

  it('reachable is ok with the latency; unreachable and bad URLs fail; unknown warns', () => {
    expect(brokerCheck({ state: 'reachable', url: 'mqtt://fleet', latencyMs: 12.25 })).toEqual({
      name: 'broker',
      verdict: 'ok',
      detail: 'mqtt://fleet accepts connections (12 ms)',
    });
    expect(
      brokerCheck({ state: 'unreachable', url: 'mqtt://fleet', reason: 'connect ECONNREFUSED' }),
    ).toEqual({
      name: 'broker',
      verdict: 'fail',
      detail: 'cannot connect to mqtt://fleet: connect ECONNREFUSED',
    });
    expect(brokerCheck({ state: 'bad_url', url: 'x', reason: 'not a URL' }).verdict).toBe('fail');
    expect(brokerCheck({ state: 'unknown', why: 'not enrolled' }).verdict).toBe('warn');
  });
});

describe('report', () => {
  const line = (name: string, verdict: CheckResult['verdict']): CheckResult => ({
    name,
    verdict,
    detail: `${name} detail`,
  });

  it('fails only when some check fails: warnings pass', () => {
    expect(report('/d', null, [line('a', 'ok'), line('b', 'warn')]).ok).toBe(true);
    expect(report('/d', null, [line('a', 'ok'), line('b', 'fail'), line('c', 'warn')]).ok).toBe(false);
  });

  it('prints one aligned line per check and a summary', () => {
    const text = formatReport(
      report('/d', 'dev-1', [line('disk', 'ok'), line('provider cuda', 'warn'), line('broker', 'fail')]),
    );
    expect(text).toBe(
      [
        'edgefleet-agent doctor: data dir /d, device dev-1',
        'ok    disk           disk detail',
        'WARN  provider cuda  provider cuda detail',
        'FAIL  broker         broker detail',
        '1 check failed, 1 warning',
        '',
      ].join('\n'),
    );
    expect(formatReport(report('/d', null, [line('disk', 'ok')]))).toMatch(
      /\nno check failed \(0 warnings\)\n$/,
    );
  });
});
