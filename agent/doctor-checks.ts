/**
 * `edgefleet-agent doctor`'s verdicts and report, as pure functions of what doctor.ts measured: each check
 * turns facts into `ok` / `warn` / `fail` with a one-line detail that says what was found and, when it is not
 * ok, what it means for the agent. Doctor fails (exit 1) only when some check fails; warnings are things the
 * agent can run with.
 */
import type { ExecutionProvider, FirmwareProfile } from '../shared/firmware-profile.js';
import { formatBytes } from '../shared/format.js';

export { formatBytes };

export type Verdict = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  /** Short and stable: `architecture`, `glibc`, `profile`, `provider cuda`, `disk`, `server`, `clock`, `broker`. */
  name: string;
  verdict: Verdict;
  detail: string;
}

export interface DoctorReport {
  /** No check failed. */
  ok: boolean;
  dataDir: string;
  deviceId: string | null;
  checks: CheckResult[];
}

/** Oldest glibc the prebuilt ONNX Runtime and Node binaries run on. */
export const MIN_GLIBC = '2.28';
/** Clock skew against the fleet beyond which doctor warns, and beyond which it fails (manifest expiry, TLS). */
export const CLOCK_WARN_MS = 5_000;
export const CLOCK_FAIL_MS = 300_000;
/** Architectures firmware profiles exist for (the profile schema's `arch`). */
const PROFILE_ARCHES = ['x64', 'arm64'];

export function report(dataDir: string, deviceId: string | null, checks: CheckResult[]): DoctorReport {
  return { ok: checks.every((c) => c.verdict !== 'fail'), dataDir, deviceId, checks };
}

/** Node's `process.arch` against the kernel's `os.machine()`: the agent's binaries must match the hardware. */
export function architectureCheck(arch: string, machine: string): CheckResult {
  const name = 'architecture';
  if (!PROFILE_ARCHES.includes(arch)) {
    return {
      name,
      verdict: 'fail',
      detail: `${arch} (${machine}): firmware profiles exist for x64 and arm64 only`,
    };
  }
  const expected = arch === 'x64' ? ['x86_64', 'amd64'] : ['aarch64', 'arm64'];
  if (!expected.includes(machine)) {
    return {
      name,
      verdict: 'warn',
      detail: `the agent is built for ${arch} but the kernel reports ${machine} (emulated or mixed userland?)`,
    };
  }
  return { name, verdict: 'ok', detail: `${arch} (${machine})` };
}

/** Compare dotted versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split('.').map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** `glibc` is `process.report`'s `glibcVersionRuntime`: absent on musl and on other systems than Linux. */
export function glibcCheck(platform: string, glibc: string | undefined): CheckResult {
  const name = 'glibc';
  if (platform !== 'linux') return { name, verdict: 'ok', detail: `not needed on ${platform}` };
  if (glibc === undefined) {
    return {
      name,
      verdict: 'fail',
      detail: `no glibc found (musl/Alpine?): ONNX Runtime's binaries need glibc >= ${MIN_GLIBC}`,
    };
  }
  if (compareVersions(glibc, MIN_GLIBC) < 0) {
    return { name, verdict: 'fail', detail: `${glibc}: ONNX Runtime's binaries need >= ${MIN_GLIBC}` };
  }
  return { name, verdict: 'ok', detail: `${glibc} (>= ${MIN_GLIBC} needed)` };
}

/** What doctor found in the data dir. */
export type Enrollment =
  | { state: 'enrolled'; deviceId: string; profile: FirmwareProfile; serverUrl: string; mqttUrl: string }
  | { state: 'not_enrolled'; path: string }
  | { state: 'unreadable'; path: string; reason: string };

/**
 * The profiles the rest of doctor checks against: the enrolled one, or (not enrolled) every known profile for
 * this architecture.
 */
export function profilesToCheck(
  enrollment: Enrollment,
  arch: string,
  known: readonly FirmwareProfile[],
): FirmwareProfile[] {
  if (enrollment.state === 'enrolled') return [enrollment.profile];
  return known.filter((p) => p.arch === arch);
}

export function profileCheck(
  enrollment: Enrollment,
  arch: string,
  candidates: FirmwareProfile[],
): CheckResult {
  const name = 'profile';
  switch (enrollment.state) {
    case 'enrolled': {
      const p = enrollment.profile;
      if (p.arch !== arch) {
        return {
          name,
          verdict: 'fail',
          detail: `enrolled with ${p.id}, a profile for ${p.arch}, but this device is ${arch}: re-enroll with a ${arch} profile`,
        };
      }
      return { name, verdict: 'ok', detail: `${p.id} (enrolled as ${enrollment.deviceId})` };
    }
    case 'unreadable':
      return { name, verdict: 'fail', detail: `cannot read ${enrollment.path}: ${enrollment.reason}` };
    case 'not_enrolled': {
      const ids = candidates.map((p) => p.id).join(', ');
      return candidates.length === 0
        ? { name, verdict: 'fail', detail: `not enrolled, and no known firmware profile is for ${arch}` }
        : {
            name,
            verdict: 'warn',
            detail: `not enrolled (no ${enrollment.path}); profiles for ${arch}: ${ids}`,
          };
    }
    default: {
      const never: never = enrollment;
      return never;
    }
  }
}

/** Outcome of loading the test model with one execution provider alone. */
export type ProbeResult = { loaded: true; runMs: number } | { loaded: false; reason: string };

/** One key per distinct provider configuration (`cuda` with device 0 and with device 1 are two). */
export function providerKey(ep: ExecutionProvider): string {
  return JSON.stringify([ep.name, ep.options]);
}

/**
 * One line per distinct provider of the profiles, in profile order. A provider that does not load is a
 * warning while every profile listing it still has one that loads (the agent falls back and reports why),
 * and a failure when some profile would then have none.
 */
export function providerChecks(profiles: FirmwareProfile[], probes: Map<string, ProbeResult>): CheckResult[] {
  const checks: CheckResult[] = [];
  const seen = new Set<string>();
  const firstLoaded = (p: FirmwareProfile) =>
    p.executionProviders.find((ep) => probes.get(providerKey(ep))?.loaded === true);
  for (const profile of profiles) {
    for (const ep of profile.executionProviders) {
      const key = providerKey(ep);
      if (seen.has(key)) continue;
      seen.add(key);
      const options = Object.keys(ep.options).length > 0 ? ` ${formatOptions(ep.options)}` : '';
      const name = `provider ${ep.name}`;
      const probe = probes.get(key);
      if (!probe) {
        checks.push({ name, verdict: 'warn', detail: `${ep.name}${options} was not tried` });
        continue;
      }
      if (probe.loaded) {
        checks.push({
          name,
          verdict: 'ok',
          detail: `loaded${options}; ran the test model in ${formatMs(probe.runMs)}`,
        });
        continue;
      }
      const listing = profiles.filter((p) => p.executionProviders.some((e) => providerKey(e) === key));
      const stranded = listing.some((p) => firstLoaded(p) === undefined);
      const fallback = listing
        .map((p) => {
          const used = firstLoaded(p);
          return used ? `${p.id} runs on ${used.name}` : `${p.id} has no provider that loads`;
        })
        .join(', ');
      checks.push({
        name,
        verdict: stranded ? 'fail' : 'warn',
        detail: `failed${options}: ${probe.reason}; ${fallback}${providerHint(ep.name, probe.reason)}`,
      });
    }
  }
  return checks;
}

/** ONNX Runtime's "Failed to load shared library" for a GPU provider means its provider libraries are missing. */
function providerHint(name: string, reason: string): string {
  if ((name === 'cuda' || name === 'tensorrt') && /failed to load shared library/i.test(reason)) {
    return ` (ONNX Runtime's ${name} provider libraries, or CUDA, are not installed: see the README, Installing on a device)`;
  }
  return '';
}

/** Free space in the data dir's filesystem against two model slots (active + staged) of the largest model. */
export function diskCheck(input: {
  path: string;
  measuredAt: string;
  freeBytes: number;
  maxModelBytes: number | undefined;
}): CheckResult {
  const name = 'disk';
  const where =
    input.measuredAt === input.path ? input.path : `${input.measuredAt} (${input.path} does not exist yet)`;
  if (input.maxModelBytes === undefined) {
    return {
      name,
      verdict: 'warn',
      detail: `${formatBytes(input.freeBytes)} free in ${where}; no profile to size models by`,
    };
  }
  const need = 2 * input.maxModelBytes;
  const detail = `${formatBytes(input.freeBytes)} free in ${where}; two model slots need ${formatBytes(need)}`;
  if (input.freeBytes >= need) return { name, verdict: 'ok', detail };
  if (input.freeBytes >= input.maxModelBytes) {
    return {
      name,
      verdict: 'warn',
      detail: `${detail}: room for one, so an update of the largest model cannot stage`,
    };
  }
  return { name, verdict: 'fail', detail: `${detail}: not even one fits` };
}

/** What asking the fleet server for `/api/v1/health` gave. */
export type ServerProbe =
  | { state: 'unknown' }
  | { state: 'unreachable'; url: string; reason: string }
  | {
      state: 'reachable';
      url: string;
      version: string | undefined;
      latencyMs: number;
      /** Local clock minus the server's, estimated from its HTTP Date header (null: no usable header). */
      skewMs: number | null;
    };

export function serverCheck(probe: ServerProbe): CheckResult {
  const name = 'server';
  switch (probe.state) {
    case 'unknown':
      return { name, verdict: 'warn', detail: 'no fleet server known: not enrolled and no --server given' };
    case 'unreachable':
      return { name, verdict: 'fail', detail: `cannot reach ${probe.url}: ${probe.reason}` };
    case 'reachable':
      return {
        name,
        verdict: 'ok',
        detail: `${probe.url} answers${probe.version ? ` (edgefleet ${probe.version})` : ''} in ${formatMs(probe.latencyMs)}`,
      };
    default: {
      const never: never = probe;
      return never;
    }
  }
}

/**
 * The server's Date header has one-second resolution: the server's clock was somewhere in [date, date + 1 s)
 * when it answered, so the estimate takes the middle of that second against the middle of the request.
 */
export function estimateSkewMs(sentAt: number, receivedAt: number, dateHeader: string | null): number | null {
  const date = dateHeader === null ? Number.NaN : Date.parse(dateHeader);
  if (Number.isNaN(date)) return null;
  return Math.round((sentAt + receivedAt) / 2 - (date + 500));
}

export function clockCheck(probe: ServerProbe): CheckResult {
  const name = 'clock';
  if (probe.state === 'unknown') {
    return { name, verdict: 'warn', detail: 'not checked: no fleet server known to compare with' };
  }
  if (probe.state === 'unreachable' || probe.skewMs === null) {
    return { name, verdict: 'warn', detail: `not checked: no time from ${probe.url}` };
  }
  const skew = probe.skewMs;
  const off = `${formatSeconds(Math.abs(skew))} ${skew >= 0 ? 'ahead of' : 'behind'} the fleet's clock`;
  if (Math.abs(skew) > CLOCK_FAIL_MS) {
    return {
      name,
      verdict: 'fail',
      detail: `${off}: manifest expiry and TLS checks need a right clock (is NTP on?)`,
    };
  }
  if (Math.abs(skew) > CLOCK_WARN_MS) {
    return { name, verdict: 'warn', detail: `${off} (more than ${CLOCK_WARN_MS / 1000} s; is NTP on?)` };
  }
  return { name, verdict: 'ok', detail: `${off} (within ${CLOCK_WARN_MS / 1000} s)` };
}

/** What connecting to the broker gave. */
export type BrokerProbe =
  | { state: 'unknown'; why: string }
  | { state: 'bad_url'; url: string; reason: string }
  | { state: 'unreachable'; url: string; reason: string }
  | { state: 'reachable'; url: string; latencyMs: number };

export function brokerCheck(probe: BrokerProbe): CheckResult {
  const name = 'broker';
  switch (probe.state) {
    case 'unknown':
      return { name, verdict: 'warn', detail: `not checked: ${probe.why}` };
    case 'bad_url':
      return { name, verdict: 'fail', detail: `${probe.url} is not a broker URL: ${probe.reason}` };
    case 'unreachable':
      return { name, verdict: 'fail', detail: `cannot connect to ${probe.url}: ${probe.reason}` };
    case 'reachable':
      return {
        name,
        verdict: 'ok',
        detail: `${probe.url} accepts connections (${formatMs(probe.latencyMs)})`,
      };
    default: {
      const never: never = probe;
      return never;
    }
  }
}

/** Host and TCP port of an MQTT URL (mqtt, mqtts, ws, wss and mqtt.js's aliases), or why not. */
export function brokerAddress(url: string): { host: string; port: number } | { error: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { error: 'not a URL' };
  }
  const defaults: Record<string, number> = {
    'mqtt:': 1883,
    'tcp:': 1883,
    'mqtts:': 8883,
    'ssl:': 8883,
    'tls:': 8883,
    'ws:': 80,
    'wss:': 443,
  };
  const fallback = defaults[parsed.protocol];
  if (fallback === undefined) return { error: `unknown scheme ${parsed.protocol}` };
  if (!parsed.hostname) return { error: 'no host' };
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port ? Number(parsed.port) : fallback,
  };
}

const MARK: Record<Verdict, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL' };

/** The human report: one aligned line per check, then a summary line. */
export function formatReport(r: DoctorReport): string {
  const width = Math.max(...r.checks.map((c) => c.name.length));
  const lines = [
    `edgefleet-agent doctor: data dir ${r.dataDir}${r.deviceId ? `, device ${r.deviceId}` : ''}`,
  ];
  for (const c of r.checks) lines.push(`${MARK[c.verdict].padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`);
  const failed = r.checks.filter((c) => c.verdict === 'fail').length;
  const warned = r.checks.filter((c) => c.verdict === 'warn').length;
  lines.push(
    failed > 0
      ? `${failed} check${failed === 1 ? '' : 's'} failed, ${warned} warning${warned === 1 ? '' : 's'}`
      : `no check failed (${warned} warning${warned === 1 ? '' : 's'})`,
  );
  return `${lines.join('\n')}\n`;
}

function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function formatOptions(options: Record<string, string | number | boolean>): string {
  return `(${Object.entries(options)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')})`;
}
