/**
 * The fleet server's composition root: the only place that opens LevelDB, starts the embedded broker and
 * the server's own MQTT connection, loads ONNX Runtime and listens for HTTP. Everything else receives what
 * it needs as arguments.
 */
import { writeSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type ServerType, serve } from '@hono/node-server';
import { destination, pino } from 'pino';
import { ValidationError } from '../shared/errors.js';
import { createApi } from './api/app.js';
import { ChangeFeed } from './api/changes.js';
import { type OperatorTokenRecord, OperatorTokens } from './api/tokens.js';
import { AuditLog } from './audit/log.js';
import { AccessPolicy, SERVER_USERNAME } from './broker/access.js';
import { type EmbeddedBroker, startEmbeddedBroker } from './broker/aedes.js';
import { connectFleetLink, type FleetLink } from './broker/link.js';
import { codeVersion } from './code-version.js';
import { type FleetConfig, type FleetConfigInput, reachableHost, resolveConfig } from './config.js';
import { consolePage } from './console/serve.js';
import { loadProfiles } from './devices/profiles.js';
import { type DeviceRecord, DeviceRegistry, type EnrollmentTokenRecord } from './devices/registry.js';
import { randomSecret } from './devices/secrets.js';
import { type DeviceDrift, DriftReports, type HistoryEntry } from './drift/reports.js';
import { ingestDeviceBatch } from './pool/ingest.js';
import { Pool } from './pool/pool.js';
import { type SnapshotRecord, Snapshots } from './pool/snapshots.js';
import { loadOrCreateKeyRing } from './registry/keys.js';
import { type AliasRecord, ModelRegistry, type ModelVersionRecord } from './registry/models.js';
import { RetrainLoop } from './retrain/loop.js';
import { RETRAIN_STATUSES, type RetrainRecord, type StoredPolicy } from './retrain/record.js';
import { RolloutController } from './rollouts/controller.js';
import { ROLLOUT_MIGRATIONS, type RolloutRecord } from './rollouts/record.js';
import { ArtifactStore } from './store/artifacts.js';
import { Db } from './store/db.js';
import { migrated } from './store/migrations.js';
import { type TelemetryWindow, TelemetryWindows } from './telemetry/windows.js';
import { type TrainingRunRecord, TrainingRuns } from './training/runs.js';
import { runInWorker } from './training/worker.js';

export const VERSION = '0.1.0';

export interface FleetServer {
  httpUrl: string;
  mqttUrl: string;
  /** The bootstrap admin token (read back from the data dir on later starts). */
  adminToken: string;
  config: FleetConfig;
  /** Handles for tests and tools: the database (collections `devices`, `enrollment-tokens`, `operator-tokens`,
   *  `model-versions`, `rollouts`), the domain modules and broker counters. */
  db: Db;
  devices: DeviceRegistry;
  models: ModelRegistry;
  training: TrainingRuns;
  rollouts: RolloutController;
  drift: DriftReports;
  retrains: RetrainLoop;
  audit: AuditLog;
  /** The HTTP API's routes (tests check the OpenAPI document against them). */
  api: ReturnType<typeof createApi>;
  pool: Pool;
  snapshots: Snapshots;
  broker: EmbeddedBroker;
  link: FleetLink;
  close(): Promise<void>;
}

export async function startFleetServer(input: FleetConfigInput = {}): Promise<FleetServer> {
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  const config = resolveConfig(input);
  const log = pino({ level: config.logLevel, base: { svc: 'fleet' } }, destination(2));
  const now = () => new Date();

  await mkdir(config.dataDir, { recursive: true });
  const profiles = await loadProfiles(config.profilesDir);
  const db = await Db.open(join(config.dataDir, 'db'));
  const closers: (() => Promise<void>)[] = [() => db.close()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err) => log.error({ err }, 'close failed'));
  };

  try {
    const artifacts = new ArtifactStore(join(config.dataDir, 'artifacts'));
    await artifacts.init();
    const keys = await loadOrCreateKeyRing(config.dataDir);
    const audit = new AuditLog(db, now);
    const tokens = new OperatorTokens(db.collection<OperatorTokenRecord>('operator-tokens'), now);
    const bootstrapToken = await tokens.bootstrapAdmin(config.dataDir);
    if (bootstrapToken) process.stdout.write(`admin token: ${bootstrapToken}\n`);
    const adminToken = bootstrapToken ?? (await readAdminToken(config.dataDir));

    // What moved without an audit entry, for the console's live updates (GET /api/v1/events).
    const changes = new ChangeFeed();
    const devices = new DeviceRegistry(
      db.collection<DeviceRecord>('devices'),
      db.collection<EnrollmentTokenRecord>('enrollment-tokens'),
      profiles,
      { now },
      { onChanged: (device) => changes.publish('device', device.id) },
    );

    // One scan indexes every device (the device list and the overview read the index, not the records);
    // marking them offline then reads only those the index says are online.
    await devices.load();
    await devices.markAllOffline();
    const serverSecret = randomSecret(32);
    const broker = await startEmbeddedBroker({
      host: config.mqttHost,
      port: config.mqttPort,
      policy: new AccessPolicy(serverSecret, devices),
      log,
    });
    // Closed before the fleet's own link at shutdown (see below), and here too if startup fails before that.
    let brokerClosed: Promise<void> | undefined;
    const closeBroker = () => {
      brokerClosed ??= broker.close();
      return brokerClosed;
    };
    closers.push(closeBroker);
    const mqttUrl = `mqtt://${reachableHost(config.mqttHost)}:${broker.port}`;

    const ort = await import('onnxruntime-node');
    const models = new ModelRegistry(
      db.collection<ModelVersionRecord>('model-versions'),
      db.collection<AliasRecord>('model-aliases'),
      artifacts,
      keys,
      ort,
      {
        maxModelBytes: config.maxModelBytes,
        manifestValidityDays: config.manifestValidityDays,
        now,
      },
    );

    // The HTTP port must be known before rollouts can name artifact URLs: listen first, route after.
    let app: ReturnType<typeof createApi> | undefined;
    const http: ServerType = await new Promise((resolve, reject) => {
      const server = serve(
        {
          fetch: (req) => (app ? app.fetch(req) : new Response('starting', { status: 503 })),
          hostname: config.httpHost,
          port: config.httpPort,
        },
        () => resolve(server),
      );
      server.once('error', reject);
    });
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          http.close(() => resolve());
          (http as { closeAllConnections?: () => void }).closeAllConnections?.();
        }),
    );
    const httpPort = (http.address() as AddressInfo).port;
    const httpUrl = `http://${reachableHost(config.httpHost)}:${httpPort}`;
    const publicUrl = config.publicUrl ?? httpUrl;
    const publicMqttUrl = config.publicMqttUrl ?? mqttUrl;

    const pool = new Pool(db);
    const snapshots = new Snapshots(db.collection<SnapshotRecord>('snapshots'), artifacts, pool);
    const link = await connectFleetLink({
      url: mqttUrl,
      username: SERVER_USERNAME,
      password: serverSecret,
      maxMessageBytes: config.maxMessageBytes,
      maxSampleBatchBytes: config.maxSampleBatchBytes,
      log,
      onRejected: (deviceId, channel, reason) => {
        // A sample batch refused before it could be read still counts against its device.
        if (channel !== 'samples') return;
        const counted = reason === 'oversize_batch' ? 'oversize_batch' : 'malformed';
        pool
          .countRejected('(unparsed)', deviceId, counted, 1)
          .catch((err) => log.error({ err }, 'count failed'));
      },
    });
    // The broker goes first: devices stop publishing (what the broker has not acknowledged stays in their
    // outboxes), then the link finishes handling what it already received, and only then the store closes.
    // Closing the link first lost every message devices sent in between: the broker acknowledged them with
    // nobody subscribed.
    closers.push(async () => {
      await closeBroker();
      await link.close();
    });
    const telemetryWindows = new TelemetryWindows(db.collection<TelemetryWindow>('telemetry-windows'), {
      now,
    });
    const driftReports = new DriftReports(
      db.collection<DeviceDrift>('drift-latest'),
      db.collection<HistoryEntry>('drift-history'),
      { now },
    );
    const rollouts = new RolloutController(
      migrated(db.collection<RolloutRecord>('rollouts'), ROLLOUT_MIGRATIONS),
      devices,
      models,
      link,
      {
        telemetry: telemetryWindows,
        drift: driftReports,
        onEvents: async (rollout, events) => {
          for (const e of events) {
            await audit.append({
              actor: 'system:rollouts',
              action: `rollout.${e.type}`,
              target: `rollouts/${rollout.id}`,
              detail: `${rollout.model.name}@${rollout.model.version}: ${e.message}`,
            });
          }
        },
        publicUrl,
        now,
        log,
        onSaved: (rollout) => changes.publish('rollout', rollout.id),
        // Which variant of a version each device gets follows its profile's preference order.
        profiles,
        // A version every targeted device runs is, by definition, what production runs.
        onSucceeded: async (rollout) => {
          const { name, version } = rollout.model;
          const alias = await models.setAlias(name, 'production', version, `rollout:${rollout.id}`);
          if (alias.moved) log.info({ model: name, version, rollout: rollout.id }, 'production moved');
        },
      },
    );
    const training = new TrainingRuns(
      db.collection<TrainingRunRecord>('training-runs'),
      pool,
      snapshots,
      models,
      artifacts,
      {
        runner: (input, onProgress, signal) => runInWorker(input, onProgress, { signal }),
        codeVersion: codeVersion(VERSION),
        now,
        log,
        onSaved: (run) => changes.publish('training-run', run.id),
      },
    );
    const retrains = new RetrainLoop(
      db.collection<StoredPolicy>('retrain-policies'),
      db.collection<RetrainRecord>('retrains'),
      {
        pool,
        training,
        models,
        rollouts,
        devices,
        drift: driftReports,
        audit,
        now,
        log,
        afterPersist: retrainFault(process.env.EDGEFLEET_FAULT_AFTER),
      },
    );
    // Closers run in reverse: training stops first, so a retrain waiting on its run sees it end (interrupted)
    // and records that before the loop is closed.
    closers.push(() => retrains.close());
    closers.push(() => training.close());
    closers.push(async () => rollouts.close());
    const interrupted = await training.recover();
    if (interrupted > 0)
      log.warn({ runs: interrupted }, 'training runs interrupted by the last stop marked failed');
    await link.listen({
      status: async (deviceId, message) => {
        const result = await devices.applyStatus(deviceId, message);
        if (result?.cameOnline) await rollouts.onDeviceOnline(deviceId);
      },
      telemetry: async (deviceId, message) => {
        await devices.applyTelemetry(deviceId, message);
        await telemetryWindows.record(deviceId, message);
      },
      drift: async (deviceId, message) => {
        await devices.touch(deviceId);
        const entry = await driftReports.record(deviceId, message);
        if (entry.verdict === 'drift' || entry.conceptSince !== null) retrains.check();
      },
      update: async (deviceId, message) => {
        await devices.touch(deviceId);
        await rollouts.onUpdate(deviceId, message);
      },
      samples: async (deviceId, message) => {
        await devices.touch(deviceId);
        const result = await ingestDeviceBatch(pool, deviceId, message);
        if (result && Object.keys(result.rejected).length > 0) {
          log.warn(
            { deviceId, model: message.model, rejected: result.rejected, example: result.examples[0] },
            'samples refused',
          );
        }
      },
    });

    // Unfinished rollouts resume where they stood (after the link listens: reconcile may send commands).
    await rollouts.start();
    await retrains.start(config.retrainCheckMs);
    app = createApi({
      tokens,
      pool,
      snapshots,
      training,
      devices,
      models,
      rollouts,
      drift: driftReports,
      retrains,
      audit,
      changes,
      telemetry: telemetryWindows,
      artifacts,
      keys,
      publicUrl,
      publicMqttUrl,
      version: VERSION,
      log,
    });
    // The web console next to the API: its page and bundled assets (all it reads comes from the API).
    app.route('/', consolePage());
    log.info({ http: httpUrl, mqtt: mqttUrl, dataDir: config.dataDir }, 'fleet server started');

    return {
      httpUrl,
      mqttUrl,
      adminToken,
      config,
      db,
      devices,
      models,
      rollouts,
      drift: driftReports,
      retrains,
      audit,
      api: app,
      pool,
      snapshots,
      training,
      broker,
      link,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * Crash tests' fault hook: `EDGEFLEET_FAULT_AFTER=retrain:<status>` SIGKILLs the fleet server right after a
 * retrain's record is persisted in that status, as a power loss between two steps would.
 */
function retrainFault(value: string | undefined): ((record: RetrainRecord) => void) | undefined {
  if (value === undefined || value === '') return undefined;
  const status = value.startsWith('retrain:') ? value.slice('retrain:'.length) : '';
  if (!(RETRAIN_STATUSES as readonly string[]).includes(status))
    throw new ValidationError(
      `EDGEFLEET_FAULT_AFTER must be retrain:<status>, one of ${RETRAIN_STATUSES.join(', ')}; got '${value}'`,
      { code: 'bad_fault' },
    );
  return (record) => {
    if (record.status !== status) return;
    writeSync(2, `fault: killed after retrain:${status}\n`); // synchronous: the kill leaves no time to flush
    process.kill(process.pid, 'SIGKILL');
  };
}

async function readAdminToken(dataDir: string): Promise<string> {
  try {
    return (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  } catch {
    return '';
  }
}
