/**
 * Real parts for the agent's update integration tests: a tiny artifact server (node:http, Basic auth, Range,
 * scripted faults), signed manifests with golden I/O computed by ONNX Runtime, and a device stack composed
 * from the agent's own classes (LevelDB store, slots, ORT runtime, effects, driver) over a temp data dir.
 * Hooks let a test "crash" the device right after a state is persisted: the stack stops there, its LevelDB
 * is closed, and a new process (startAgent) is started over the same directory.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  type AddressInfo,
  createServer as createTcpServer,
  type Socket,
  type Server as TcpServer,
} from 'node:net';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import { IDENTITY_FILE } from '../../../agent/enroll.js';
import { serveFromDisk } from '../../../agent/main.js';
import { ModelHost } from '../../../agent/runtime/host.js';
import { OrtRuntime } from '../../../agent/runtime/ort.js';
import { ShadowRunner } from '../../../agent/runtime/shadow.js';
import { SlotStore } from '../../../agent/runtime/slots.js';
import { createInferenceApi } from '../../../agent/server/app.js';
import { AgentDb } from '../../../agent/store.js';
import { InferenceStats } from '../../../agent/telemetry/stats.js';
import { UpdateDriver, type UpdateStore } from '../../../agent/updater/driver.js';
import { UpdateEffects } from '../../../agent/updater/effects.js';
import type { EnrollResponse } from '../../../shared/api/enroll.js';
import { type SigningKey, sha256Hex } from '../../../shared/crypto/signing.js';
import type { FirmwareProfile } from '../../../shared/firmware-profile.js';
import {
  MANIFEST_SCHEMA,
  type Manifest,
  signManifest,
  type UnsignedManifestInput,
} from '../../../shared/manifest.js';
import {
  type Command,
  type InstallCommand,
  PROTOCOL_VERSION,
  type UpdateMessage,
  type UpdateState,
} from '../../../shared/protocol/messages.js';
import { FEATURES, randomBatch } from '../../support/models.js';
import { TEST_CPU_PROFILE } from '../../support/profiles.js';

export const DEVICE_ID = 'dev-test-1';
export const PASSWORD = 'device-secret-0123456789';

// ---- artifact server -------------------------------------------------------------------------------

export interface Fault {
  /** Answer this many requests with 503 first. */
  unavailable?: number;
  /** First request only: send this many body bytes, then end the connection (download interrupted). */
  cutAfter?: number;
  /** First request only: send this many body bytes, then hold the connection open (stalled download). */
  stallAfter?: number;
  /** Append these bytes to every full (200) response (server sends more than the manifest says). */
  extra?: Uint8Array;
  /** Answer with this status instead (404, 401…). */
  status?: number;
}

export interface ArtifactRequest {
  sha256: string;
  range: string | undefined;
  authorization: string | undefined;
  status: number;
}

/** Serves `/api/v1/artifacts/<sha256>` like the fleet does: device Basic auth, `Range: bytes=a-[b]`. */
export class ArtifactServer {
  readonly requests: ArtifactRequest[] = [];
  private readonly files = new Map<string, Uint8Array>();
  private readonly faults = new Map<string, Fault & { served: number }>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<ArtifactServer> {
    let self: ArtifactServer | undefined;
    const server = createServer((req, res) => self!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new ArtifactServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }

  /** Serve `bytes` under `sha256` (pass another hash to serve tampered content under a signed one). */
  put(bytes: Uint8Array, sha256 = sha256Hex(bytes)): string {
    this.files.set(sha256, bytes);
    return `${this.url}/api/v1/artifacts/${sha256}`;
  }

  fault(sha256: string, fault: Fault): void {
    this.faults.set(sha256, { ...fault, served: 0 });
  }

  requestsFor(sha256: string): ArtifactRequest[] {
    return this.requests.filter((r) => r.sha256 === sha256);
  }

  /** Drop every open connection (the device "died" mid-download). */
  dropConnections(): void {
    this.server.closeAllConnections();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const sha256 = /^\/api\/v1\/artifacts\/([0-9a-f]{64})$/.exec(req.url ?? '')?.[1] ?? '';
    const record = (status: number) =>
      this.requests.push({
        sha256,
        range: req.headers.range,
        authorization: req.headers.authorization,
        status,
      });
    const bytes = this.files.get(sha256);
    const fault = this.faults.get(sha256);
    const first = fault ? fault.served++ === 0 : false;
    const expectedAuth = `Basic ${Buffer.from(`${DEVICE_ID}:${PASSWORD}`).toString('base64')}`;
    if (req.headers.authorization !== expectedAuth) {
      record(401);
      res.writeHead(401).end();
      return;
    }
    if (!bytes) {
      record(404);
      res.writeHead(404).end();
      return;
    }
    if (fault?.status) {
      record(fault.status);
      res.writeHead(fault.status).end();
      return;
    }
    if (fault?.unavailable && fault.served <= fault.unavailable) {
      record(503);
      res.writeHead(503).end();
      return;
    }
    let body = Buffer.from(bytes);
    let status = 200;
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
      if (start >= bytes.length || start > end) {
        record(416);
        res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
        return;
      }
      body = body.subarray(start, end + 1);
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${bytes.length}`;
    } else if (fault?.extra) {
      body = Buffer.concat([body, fault.extra]);
    }
    record(status);
    headers['content-length'] = String(body.length);
    res.writeHead(status, headers);
    const partial = first ? (fault?.cutAfter ?? fault?.stallAfter) : undefined;
    if (partial === undefined) {
      res.end(body);
      return;
    }
    res.write(body.subarray(0, partial), () => {
      if (fault?.cutAfter !== undefined) res.socket?.end();
    });
  }
}

// ---- MQTT broker ------------------------------------------------------------------------------------

/** aedes behind a TCP listener that can go away and come back on the same port (the broker "restarts"). */
export class Broker {
  readonly aedes: Aedes;
  private server: TcpServer | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  private constructor(aedes: Aedes) {
    this.aedes = aedes;
  }

  static async start(): Promise<Broker> {
    const broker = new Broker(await Aedes.createBroker());
    await broker.listen(0);
    return broker;
  }

  async listen(port: number): Promise<void> {
    const server = createTcpServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      this.aedes.handle(socket);
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  /** Stop listening and cut every connection (clients see the broker vanish). */
  async goDown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve());
  }

  /** Drop one client's connection from the broker side without a DISCONNECT (its will fires). */
  kick(clientId: string): void {
    (this.aedes as unknown as { clients: Record<string, { close(): void }> }).clients[clientId]?.close();
  }

  async close(): Promise<void> {
    await this.goDown();
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
  }
}

// ---- models and manifests --------------------------------------------------------------------------

export const SAMPLE = randomBatch(5, 1);

export async function runDirect(model: Uint8Array, data: number[], rows = 1): Promise<number[]> {
  const session = await ort.InferenceSession.create(model);
  try {
    const out = await session.run({
      input: new ort.Tensor('float32', Float32Array.from(data), [rows, FEATURES]),
    });
    return Array.from(out.output!.data as Float32Array);
  } finally {
    await session.release();
  }
}

/** A signed manifest for `bytes` with golden I/O that ONNX Runtime computed for it. */
export async function manifestFor(
  bytes: Uint8Array,
  version: number,
  key: SigningKey,
  overrides: Partial<UnsignedManifestInput> = {},
): Promise<Manifest> {
  const now = Date.now();
  return signManifest(
    {
      schema: MANIFEST_SCHEMA,
      name: 'm',
      version,
      artifact: { sha256: sha256Hex(bytes), size: bytes.length },
      inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', FEATURES] }],
      outputs: [{ name: 'output', dtype: 'float32', shape: ['batch', 2] }],
      opset: 13,
      createdAt: new Date(now - 60_000).toISOString(),
      expiresAt: new Date(now + 86_400_000).toISOString(),
      ...overrides,
      golden: overrides.golden ?? {
        inputs: [{ name: 'input', dtype: 'float32', shape: [1, FEATURES], data: SAMPLE }],
        outputs: [{ name: 'output', dtype: 'float32', shape: [1, 2], data: await runDirect(bytes, SAMPLE) }],
        tolerance: { abs: 1e-5, rel: 1e-4 },
      },
    },
    key,
  );
}

export function installCommand(
  manifest: Manifest | string,
  artifactUrl: string,
  id = randomUUID(),
): InstallCommand {
  return {
    v: PROTOCOL_VERSION,
    type: 'install',
    id,
    ts: Date.now(),
    rolloutId: `rollout-${id.slice(0, 8)}`,
    manifest: typeof manifest === 'string' ? manifest : JSON.stringify(manifest),
    artifactUrl,
    mode: 'activate',
    shadowPercent: 100,
  };
}

export function identityFor(
  key: SigningKey,
  profile: FirmwareProfile = TEST_CPU_PROFILE,
  // By default nothing listens there: a link would keep retrying in the background.
  mqttUrl = 'mqtt://127.0.0.1:9',
): EnrollResponse {
  return {
    deviceId: DEVICE_ID,
    mqtt: { url: mqttUrl, username: DEVICE_ID, password: PASSWORD },
    trustedKeys: [{ keyid: key.keyid, publicKey: key.publicKey }],
    serverUrl: 'http://127.0.0.1:9',
    profile,
    tags: {},
  };
}

export async function writeIdentity(dataDir: string, identity: EnrollResponse): Promise<void> {
  await writeFile(join(dataDir, IDENTITY_FILE), JSON.stringify(identity), { mode: 0o600 });
}

// ---- the device stack --------------------------------------------------------------------------------

export interface DeviceOptions {
  dataDir: string;
  identity: EnrollResponse;
  /** Stop for good right after this state is persisted (for `downloading`: after the first chunk is on disk). */
  crashAt?: UpdateState;
  downloadAttempts?: number;
  /** Called once the first downloaded chunk is on disk (before `crashAt: 'downloading'` stops there). */
  onFirstChunk?: () => Promise<void>;
  /** Serve what the slots hold at open, as the agent does at start. */
  serveFromDisk?: boolean;
}

export interface Device {
  host: ModelHost;
  slots: SlotStore;
  driver: UpdateDriver;
  shadow: ShadowRunner;
  db: AgentDb;
  reports: UpdateMessage[];
  /** Resolves when the device reached `crashAt` (and stopped there). */
  crashed: Promise<UpdateState>;
  /** Install and wait for the outcome; returns the update reports for this command. */
  install(command: InstallCommand): Promise<UpdateMessage[]>;
  /** Any command (activate, rollback too); waits until the driver is idle; returns its reports. */
  command(command: Command): Promise<UpdateMessage[]>;
  /** Run one OIP inference request through the agent's own API over the serving model. */
  infer(data: number[]): Promise<{ status: number; body: any }>;
  /** Release sessions and close LevelDB (after a crash: what a killed process leaves behind). */
  close(): Promise<void>;
}

export async function openDevice(options: DeviceOptions): Promise<Device> {
  const { dataDir, identity } = options;
  const db = await AgentDb.open(join(dataDir, 'db'));
  const slots = new SlotStore(join(dataDir, 'models'));
  const host = new ModelHost();
  const reports: UpdateMessage[] = [];
  const log = pino({ level: 'silent' });
  let signalCrash: (state: UpdateState) => void = () => undefined;
  const crashed = new Promise<UpdateState>((resolve) => {
    signalCrash = resolve;
  });
  const stopHere = async (state: UpdateState) => {
    if (options.crashAt !== state) return;
    signalCrash(state);
    await new Promise<never>(() => undefined);
  };
  const effectsRuntime = new OrtRuntime();
  const shadow = new ShadowRunner({ capacity: 64, random: Math.random, now: () => performance.now() });
  const effects = new UpdateEffects({
    identity,
    profile: identity.profile,
    downloadsDir: join(dataDir, 'downloads'),
    slots,
    host,
    runtime: effectsRuntime,
    shadow,
    maxManifestBytes: 1024 * 1024,
    downloadAttempts: options.downloadAttempts ?? 3,
    now: () => new Date(),
    afterFirstChunk: async () => {
      await options.onFirstChunk?.();
      await stopHere('downloading');
    },
    retryDelayMs: () => 1,
  });
  // Submit persists `received` itself (no afterPersist there): stop right after that write instead.
  const store = db.updates();
  const guarded: UpdateStore = {
    ...store,
    put: async (record) => {
      await store.put(record);
      if (record.state === 'received') await stopHere('received');
    },
  };
  const driver = new UpdateDriver({
    store: guarded,
    effects,
    host,
    reporter: { update: (m) => reports.push(m) },
    maxReentries: 3,
    log,
    newId: randomUUID,
    now: Date.now,
    afterPersist: (state) => (state === 'downloading' ? Promise.resolve() : stopHere(state)),
  });
  if (options.serveFromDisk) await serveFromDisk(slots, effectsRuntime, identity.profile, host, log);
  await driver.recover();
  const app = createInferenceApi({
    host,
    stats: new InferenceStats(64),
    log,
    agentVersion: 'test',
    maxBatchRows: 1,
    shadow,
  });
  return {
    host,
    slots,
    driver,
    shadow,
    db,
    reports,
    crashed,
    async install(command) {
      await driver.submit(command);
      await driver.idle();
      return reports.filter((r) => r.commandId === command.id);
    },
    async command(command) {
      await driver.submit(command);
      await driver.idle();
      return reports.filter((r) => r.commandId === command.id);
    },
    async infer(data) {
      const res = await app.request('/v2/models/m/infer', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, FEATURES], datatype: 'FP32', data }] }),
      });
      return { status: res.status, body: await res.json() };
    },
    async close() {
      for (const m of host.all()) await m.loaded.release().catch(() => undefined);
      await db.close();
    },
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** `promise`, or a failure naming what never happened after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
