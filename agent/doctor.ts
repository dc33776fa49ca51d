/**
 * `edgefleet-agent doctor`: measures what decides whether the agent can run well on this device — the
 * architecture and C library, the firmware profile, which execution providers load a real model, free disk,
 * the clock against the fleet's, and whether the fleet and its broker answer — and hands the facts to the
 * pure verdicts in doctor-checks.ts. It only reads: it never opens the agent's LevelDB (a running agent holds
 * its lock) and never connects to the broker as the device (that would push the running agent's session out).
 */
import { access, constants, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { machine, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { EnrollResponse } from '../shared/api/enroll.js';
import type { FirmwareProfile } from '../shared/firmware-profile.js';
import {
  architectureCheck,
  type BrokerProbe,
  brokerAddress,
  brokerCheck,
  type CheckResult,
  clockCheck,
  type DoctorReport,
  diskCheck,
  type Enrollment,
  estimateSkewMs,
  glibcCheck,
  type ProbeResult,
  profileCheck,
  profilesToCheck,
  providerChecks,
  providerKey,
  report,
  type ServerProbe,
  serverCheck,
} from './doctor-checks.js';
import { DOCTOR_MODEL } from './doctor-model.js';
import { IDENTITY_FILE, loadIdentity } from './enroll.js';
import { KNOWN_PROFILES } from './known-profiles.js';
import { type ModelRuntime, NoExecutionProviderError } from './runtime/ort.js';

export interface DoctorOptions {
  dataDir: string;
  /** Fleet server to check against; defaults to the one the device enrolled with. */
  server?: string | undefined;
  /** Bound on each network probe, ms. */
  timeoutMs?: number;
}

export interface DoctorDeps {
  /** The agent's runtime; `scratchDir` takes what providers write (TensorRT's engine cache), then goes. */
  runtime: (scratchDir: string) => ModelRuntime;
  /** Profiles to consider when the device is not enrolled. */
  knownProfiles?: readonly FirmwareProfile[];
  now?: () => number;
}

export async function runDoctor(options: DoctorOptions, deps: DoctorDeps): Promise<DoctorReport> {
  const dataDir = resolve(options.dataDir);
  const timeoutMs = options.timeoutMs ?? 5_000;
  const now = deps.now ?? Date.now;
  const arch = process.arch;
  const checks: CheckResult[] = [
    architectureCheck(arch, machine()),
    glibcCheck(process.platform, glibcVersion()),
  ];

  const enrollment = await readEnrollment(dataDir);
  const profiles = profilesToCheck(enrollment, arch, deps.knownProfiles ?? KNOWN_PROFILES);
  checks.push(profileCheck(enrollment, arch, profiles));
  checks.push(...providerChecks(profiles, await probeProviders(deps.runtime, profiles)));

  const free = await freeSpace(dataDir);
  checks.push(
    diskCheck({
      path: dataDir,
      measuredAt: free.path,
      freeBytes: free.bytes,
      maxModelBytes: profiles.length > 0 ? Math.max(...profiles.map((p) => p.maxModelBytes)) : undefined,
    }),
  );

  const serverUrl = options.server ?? (enrollment.state === 'enrolled' ? enrollment.serverUrl : undefined);
  const server = serverUrl === undefined ? undefined : await probeServer(serverUrl, timeoutMs, now);
  const serverProbe: ServerProbe = server?.probe ?? { state: 'unknown' };
  checks.push(serverCheck(serverProbe), clockCheck(serverProbe));

  // The enrolled URL is the one the agent uses; the server's answer covers a device about to enroll.
  const mqttUrl = enrollment.state === 'enrolled' ? enrollment.mqttUrl : server?.mqttUrl;
  checks.push(brokerCheck(await probeBroker(mqttUrl, serverProbe, timeoutMs, now)));

  return report(dataDir, enrollment.state === 'enrolled' ? enrollment.deviceId : null, checks);
}

/** glibc's version from Node's diagnostic report header; undefined where the C library is not glibc. */
function glibcVersion(): string | undefined {
  const r = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return r?.header?.glibcVersionRuntime;
}

async function readEnrollment(dataDir: string): Promise<Enrollment> {
  const path = join(dataDir, IDENTITY_FILE);
  let identity: EnrollResponse;
  try {
    // loadIdentity reads and validates; a missing file and an unreadable one are told apart below.
    identity = await loadIdentity(dataDir);
  } catch (err) {
    const code = await accessError(path);
    if (code === 'ENOENT') return { state: 'not_enrolled', path };
    // Readable but refused by loadIdentity: damaged (its message says how).
    const reason =
      code === undefined
        ? (err as Error).message
        : code === 'EACCES'
          ? 'permission denied (run doctor as root or as the agent user)'
          : code;
    return { state: 'unreadable', path, reason };
  }
  return {
    state: 'enrolled',
    deviceId: identity.deviceId,
    profile: identity.profile,
    serverUrl: identity.serverUrl,
    mqttUrl: identity.mqtt.url,
  };
}

async function accessError(path: string): Promise<string | undefined> {
  try {
    await access(path, constants.R_OK);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'EIO';
  }
}

/**
 * Load a tiny built-in model with each distinct provider of the profiles alone, through the agent's own
 * runtime (same session options), and run it once.
 */
async function probeProviders(
  makeRuntime: DoctorDeps['runtime'],
  profiles: FirmwareProfile[],
): Promise<Map<string, ProbeResult>> {
  const probes = new Map<string, ProbeResult>();
  if (profiles.length === 0) return probes;
  // Not the data dir: doctor often runs as root, and must leave nothing there the agent's user cannot own.
  const dir = await mkdtemp(join(tmpdir(), 'edgefleet-doctor-'));
  try {
    const runtime = makeRuntime(dir);
    const modelPath = join(dir, 'doctor.onnx');
    await writeFile(modelPath, DOCTOR_MODEL.bytes());
    for (const profile of profiles) {
      for (const ep of profile.executionProviders) {
        const key = providerKey(ep);
        if (probes.has(key)) continue;
        probes.set(key, await probeOne(runtime, modelPath, { ...profile, executionProviders: [ep] }));
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return probes;
}

async function probeOne(
  runtime: ModelRuntime,
  modelPath: string,
  profile: FirmwareProfile,
): Promise<ProbeResult> {
  let loaded: Awaited<ReturnType<ModelRuntime['load']>>;
  try {
    loaded = await runtime.load(modelPath, profile);
  } catch (err) {
    const reason =
      err instanceof NoExecutionProviderError && err.skipped[0]
        ? err.skipped[0].reason
        : (err as Error).message;
    return { loaded: false, reason };
  }
  try {
    const started = performance.now();
    await loaded.run({
      [DOCTOR_MODEL.input]: {
        dtype: 'float32',
        data: new Float32Array(DOCTOR_MODEL.features),
        dims: [1, DOCTOR_MODEL.features],
      },
    });
    return { loaded: true, runMs: performance.now() - started };
  } catch (err) {
    return { loaded: false, reason: `loaded, but running the test model failed: ${(err as Error).message}` };
  } finally {
    await loaded.release().catch(() => undefined);
  }
}

/** Free bytes for an unprivileged user in the filesystem of `path`, or of its nearest existing parent. */
async function freeSpace(path: string): Promise<{ path: string; bytes: number }> {
  let at = path;
  for (;;) {
    try {
      const s = await statfs(at);
      return { path: at, bytes: s.bavail * s.bsize };
    } catch (err) {
      const parent = dirname(at);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === at) throw err;
      at = parent;
    }
  }
}

async function probeServer(
  url: string,
  timeoutMs: number,
  now: () => number,
): Promise<{ probe: ServerProbe; mqttUrl: string | undefined }> {
  const base = url.replace(/\/+$/, '');
  const sentAt = now();
  let res: Response;
  try {
    res = await fetch(`${base}/api/v1/health`, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    return { probe: { state: 'unreachable', url: base, reason: networkReason(err) }, mqttUrl: undefined };
  }
  const receivedAt = now();
  const body = (await res.json().catch(() => null)) as { version?: unknown; mqttUrl?: unknown } | null;
  if (!res.ok) {
    return { probe: { state: 'unreachable', url: base, reason: `HTTP ${res.status}` }, mqttUrl: undefined };
  }
  return {
    probe: {
      state: 'reachable',
      url: base,
      version: typeof body?.version === 'string' ? body.version : undefined,
      latencyMs: receivedAt - sentAt,
      skewMs: estimateSkewMs(sentAt, receivedAt, res.headers.get('date')),
    },
    mqttUrl: typeof body?.mqttUrl === 'string' ? body.mqttUrl : undefined,
  };
}

async function probeBroker(
  url: string | undefined,
  server: ServerProbe,
  timeoutMs: number,
  now: () => number,
): Promise<BrokerProbe> {
  if (url === undefined) {
    return {
      state: 'unknown',
      why:
        server.state === 'reachable'
          ? 'not enrolled, and the fleet server does not say where its broker is'
          : 'not enrolled and no reachable --server to ask for the broker URL',
    };
  }
  const address = brokerAddress(url);
  if ('error' in address) return { state: 'bad_url', url, reason: address.error };
  const startedAt = now();
  try {
    await tcpConnect(address.host, address.port, timeoutMs);
  } catch (err) {
    return { state: 'unreachable', url, reason: networkReason(err) };
  }
  return { state: 'reachable', url, latencyMs: now() - startedAt };
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const socket = connect({ host, port });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    });
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise();
    });
    socket.once('error', reject);
  });
}

/** fetch wraps the socket error in `cause`; show the one that names the problem (ECONNREFUSED, ENOTFOUND…). */
function networkReason(err: unknown): string {
  const e = err as Error & { cause?: Error & { code?: string }; code?: string };
  if (e.name === 'TimeoutError') return 'no answer in time';
  const inner = e.cause ?? e;
  return inner.code && !inner.message.includes(inner.code)
    ? `${inner.code}: ${inner.message}`
    : inner.message;
}
