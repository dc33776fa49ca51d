/**
 * The agent's composition root: the only place that opens LevelDB, creates the MQTT link, loads ONNX
 * Runtime sessions and listens for HTTP. Start order: serve what is on disk → recover unfinished updates →
 * take commands → listen locally → connect to the fleet → report. The fleet comes last: local apps are
 * served from the moment the model is loaded, whether or not the broker is reachable, and what the agent
 * reports before it connects waits in the link's queue.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ServerType } from '@hono/node-server';
import { destination, type Logger, pino } from 'pino';
import type { FirmwareProfile } from '../shared/firmware-profile.js';
import type { UpdateState } from '../shared/protocol/messages.js';
import { Capture } from './capture/capture.js';
import { Outbox } from './capture/outbox.js';
import { startSampleSender } from './capture/sender.js';
import { AGENT_VERSION, type AgentConfigInput, resolveAgentConfig } from './config.js';
import { DriftMonitor } from './drift/monitor.js';
import { loadIdentity } from './enroll.js';
import { connectLink } from './link/mqtt.js';
import { ModelHost } from './runtime/host.js';
import type { ModelRuntime } from './runtime/ort.js';
import { serveSlot } from './runtime/serve.js';
import { ShadowRunner } from './runtime/shadow.js';
import { otherSlot, type Slot, SlotStore } from './runtime/slots.js';
import { startTelemetry } from './telemetry/reporter.js';
import { InferenceStats } from './telemetry/stats.js';
import { UpdateDriver } from './updater/driver.js';
import { UpdateEffects } from './updater/effects.js';

export interface AgentFaults {
  /** Park the update after persisting this state (crash tests); see CONTRACT in the README. */
  hangAt?: UpdateState | undefined;
  announce?: (line: string) => void;
}

export interface RunningAgent {
  deviceId: string;
  apiUrl: string;
  close(): Promise<void>;
}

export async function startAgent(input: AgentConfigInput, faults: AgentFaults = {}): Promise<RunningAgent> {
  const config = resolveAgentConfig(input);
  const log = pino(
    { level: process.env.EDGEFLEET_LOG_LEVEL ?? 'info', base: { svc: 'agent' } },
    destination(2),
  );
  // Loaded here, not at import: the CLI's other commands (enroll, --help) then load neither ONNX Runtime nor
  // LevelDB, which the single executable would otherwise extract first.
  const [{ AgentDb }, { OrtRuntime }, { serve }, { createInferenceApi }] = await Promise.all([
    import('./store.js'),
    import('./runtime/ort.js'),
    import('@hono/node-server'),
    import('./server/app.js'),
  ]);
  const identity = await loadIdentity(config.dataDir);
  const profile = identity.profile;
  const db = await AgentDb.open(join(config.dataDir, 'db'));
  const runtime = new OrtRuntime({ dataDir: config.dataDir });
  const slots = new SlotStore(join(config.dataDir, 'models'));
  const host = new ModelHost((err) => log.warn({ err }, 'releasing a replaced model session failed'));
  await serveFromDisk(slots, runtime, profile, host, log);

  const hang = (state: string) =>
    new Promise<void>(() => {
      (faults.announce ?? ((l) => process.stdout.write(`${l}\n`)))(`fault: hanging at ${state}`);
    });
  const shadow = new ShadowRunner({
    capacity: config.shadowQueueLimit,
    random: Math.random,
    now: () => performance.now(),
  });
  const effects = new UpdateEffects({
    identity,
    profile,
    downloadsDir: join(config.dataDir, 'downloads'),
    slots,
    host,
    runtime,
    shadow,
    maxManifestBytes: config.maxManifestBytes,
    downloadAttempts: config.downloadAttempts,
    now: () => new Date(),
    afterFirstChunk: async () => {
      if (faults.hangAt === 'downloading') await hang('downloading');
    },
    retryDelayMs: (attempt) => Math.min(30_000, 500 * 2 ** attempt),
  });

  const link = connectLink({
    identity,
    agentVersion: AGENT_VERSION,
    queueLimit: config.reportQueueLimit,
    newId: randomUUID,
    log,
    getModels: () => host.active(),
  });
  const driver = new UpdateDriver({
    store: db.updates(),
    effects,
    host,
    reporter: { update: (m) => link.publish(m) },
    maxReentries: config.maxStateReentries,
    log,
    newId: randomUUID,
    now: Date.now,
    afterPersist: async (state) => {
      if (faults.hangAt === state && state !== 'downloading') await hang(state);
    },
  });
  await driver.recover();
  link.onCommand((command) => {
    driver
      .submit(command)
      .catch((err) => log.error({ err, commandId: command.id, type: command.type }, 'command not accepted'));
  });
  host.onChange(() => link.publishStatus(host.active()));

  const outbox = await Outbox.open(db.outbox(), config.outboxLimit);
  const capture = new Capture({
    pending: db.pending(),
    outbox,
    sampleRate: config.sampleRate,
    feedbackWindowMs: config.feedbackWindowMs,
    now: Date.now,
    random: Math.random,
    log,
  });
  const sender = startSampleSender({
    outbox,
    capture,
    link,
    batchSize: config.sampleBatchSize,
    maxAgeMs: config.sampleBatchMaxAgeMs,
    tickMs: Math.min(1000, config.sampleBatchMaxAgeMs),
    now: Date.now,
    log,
  });

  const drift = config.driftMonitoring
    ? new DriftMonitor(host, {
        windowSamples: config.driftWindowSamples,
        windowMs: config.driftWindowMs,
        reportIntervalMs: config.driftReportIntervalMs,
        queueLimit: config.driftQueueLimit,
        feedbackMemory: config.driftFeedbackMemory,
        drift: { minSamples: config.driftMinSamples },
        now: Date.now,
        newId: randomUUID,
        publish: (m) => link.publish(m),
        captureRate: () => capture.sampleRate,
        onDriftChange: (drifting) => {
          capture.sampleRate = drifting
            ? Math.max(config.sampleRate, config.driftSampleRate)
            : config.sampleRate;
          log.info({ drifting, captureRate: capture.sampleRate }, 'capture rate changed for drift');
        },
        log,
      })
    : undefined;
  drift?.start();

  const stats = new InferenceStats(config.latencyWindow);
  const app = createInferenceApi({
    host,
    stats,
    log,
    agentVersion: AGENT_VERSION,
    maxBatchRows: config.maxBatchRows,
    capture,
    shadow,
    drift,
  });
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: config.apiHost, port: config.apiPort }, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  // After the caller has announced readiness (an immediate runs after the promise continuations): local
  // inference does not wait for the MQTT client's code to load or for the broker.
  setImmediate(() => {
    link.start().catch((err) => log.error({ err }, 'the MQTT link could not start'));
  });
  const telemetry = startTelemetry({
    intervalMs: config.telemetryIntervalMs,
    host,
    stats,
    shadow,
    publish: (m) => link.publish(m),
    newId: randomUUID,
  });

  return {
    deviceId: identity.deviceId,
    apiUrl: `http://${config.apiHost === '0.0.0.0' ? '127.0.0.1' : config.apiHost}:${port}`,
    async close() {
      telemetry.stop();
      drift?.stop();
      // Let the update under way reach a step boundary before its store and sessions go away.
      if (!(await driver.stop(config.shutdownGraceMs))) {
        log.warn(
          { graceMs: config.shutdownGraceMs },
          'update step still running at shutdown; it resumes at the next start',
        );
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await sender.stop();
      await link.close().catch((err) => log.warn({ err }, 'mqtt close failed'));
      for (const m of host.all()) await m.loaded.release().catch(() => undefined);
      await db.close();
    },
  };
}

/**
 * Serve every model the slots hold: the slot the pointer names, or — if that one no longer loads or fails
 * its self-test (torn write, bad disk) — the other slot, and point there.
 */
export async function serveFromDisk(
  slots: SlotStore,
  runtime: ModelRuntime,
  profile: FirmwareProfile,
  host: ModelHost,
  log: Logger,
): Promise<void> {
  for (const name of await slots.names()) {
    const pointer = await slots.readActive(name);
    if (!pointer) continue;
    const order: Slot[] = [pointer.slot, otherSlot(pointer.slot)];
    for (const slot of order) {
      const manifest = await slots.readManifest(name, slot);
      if (!manifest) continue;
      try {
        // The pointer is rewritten only when falling back to the other slot.
        const loaded = await serveSlot(
          { runtime, slots, profile, host },
          { name, slot, manifest },
          { writePointer: slot !== pointer.slot },
        );
        if (slot !== pointer.slot) {
          log.warn(
            { model: name, from: pointer.slot, to: slot },
            'active slot does not load; serving the other slot',
          );
        }
        log.info(
          { model: name, version: manifest.version, slot, provider: loaded.provider },
          'serving model',
        );
        break;
      } catch (err) {
        log.error({ err, model: name, slot }, 'model slot does not load');
      }
    }
  }
}
