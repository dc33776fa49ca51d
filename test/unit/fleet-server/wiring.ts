/**
 * The fleet's modules wired over a suite's temp store the way fleet-server/main.ts wires them, for tests
 * that call them in-process: no MQTT, no HTTP listener; what commands and training do is the caller's.
 */
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import { createApi } from '../../../fleet-server/api/app.js';
import { ChangeFeed } from '../../../fleet-server/api/changes.js';
import { OperatorTokens } from '../../../fleet-server/api/tokens.js';
import { AuditLog } from '../../../fleet-server/audit/log.js';
import { loadProfiles } from '../../../fleet-server/devices/profiles.js';
import { type DeviceRecord, DeviceRegistry } from '../../../fleet-server/devices/registry.js';
import { DriftReports } from '../../../fleet-server/drift/reports.js';
import { Pool } from '../../../fleet-server/pool/pool.js';
import { Snapshots } from '../../../fleet-server/pool/snapshots.js';
import { type KeyRing, loadOrCreateKeyRing } from '../../../fleet-server/registry/keys.js';
import { ModelRegistry } from '../../../fleet-server/registry/models.js';
import { RetrainLoop } from '../../../fleet-server/retrain/loop.js';
import { type CommandSender, RolloutController } from '../../../fleet-server/rollouts/controller.js';
import { ArtifactStore } from '../../../fleet-server/store/artifacts.js';
import { TelemetryWindows } from '../../../fleet-server/telemetry/windows.js';
import { computeReferenceStats } from '../../../fleet-server/training/reference-stats.js';
import { type JobRunner, type TrainingRunRecord, TrainingRuns } from '../../../fleet-server/training/runs.js';
import { REPO_PROFILES } from '../../support/fleet.js';
import { FEATURES } from '../../support/models.js';
import type { TempStore } from './temp-store.js';

/** The model registry with its artifact store and signing keys in the store's directory. */
export async function openModelRegistry(
  store: TempStore,
  now: () => Date,
  maxModelBytes = 1 << 24,
): Promise<{ models: ModelRegistry; artifacts: ArtifactStore; keys: KeyRing }> {
  const artifacts = new ArtifactStore(`${store.dir}/artifacts`);
  await artifacts.init();
  const keys = await loadOrCreateKeyRing(store.dir);
  const models = new ModelRegistry(
    store.db.collection('model-versions'),
    store.db.collection('model-aliases'),
    artifacts,
    keys,
    ort,
    { maxModelBytes, manifestValidityDays: 30, now },
  );
  return { models, artifacts, keys };
}

/** Reference statistics over FEATURES features and two classes, as training would attach to a version. */
export function sampleReferenceStats() {
  return computeReferenceStats({
    features: Float32Array.from({ length: 20 * FEATURES }, (_, i) => (i % 7) - 3),
    featureNames: Array.from({ length: FEATURES }, (_, j) => `f${j}`),
    outputs: Float32Array.from({ length: 40 }, (_, i) => (i % 2 ? 0.7 : 0.3)),
    classes: ['a', 'b'],
    bins: 4,
  });
}

/** The device registry with the repository's firmware profiles. */
async function openDeviceRegistry(
  store: TempStore,
  now: () => Date,
  onChanged?: (device: DeviceRecord) => void,
): Promise<DeviceRegistry> {
  return new DeviceRegistry(
    store.db.collection('devices'),
    store.db.collection('enrollment-tokens'),
    await loadProfiles(REPO_PROFILES),
    { now },
    onChanged ? { onChanged } : {},
  );
}

/** The whole API (`app.request`) with an admin token and handles on the modules under it. */
export async function openApi(
  store: TempStore,
  options: {
    now: () => Date;
    sendCommand?: CommandSender['sendCommand'];
    runner?: JobRunner;
    changes?: ChangeFeed;
    onDeviceChanged?: (device: DeviceRecord) => void;
    onTrainingSaved?: (run: TrainingRunRecord) => void;
  },
) {
  const { db, dir } = store;
  const { now } = options;
  const log = pino({ level: 'silent' });
  const tokens = new OperatorTokens(db.collection('operator-tokens'), now);
  const admin = (await tokens.bootstrapAdmin(dir))!;
  const devices = await openDeviceRegistry(store, now, options.onDeviceChanged);
  const { models, artifacts, keys } = await openModelRegistry(store, now, 2_000_000);
  const rollouts = new RolloutController(
    db.collection('rollouts'),
    devices,
    models,
    { sendCommand: options.sendCommand ?? (async () => undefined) },
    { publicUrl: 'http://fleet.test', now, log },
  );
  const pool = new Pool(db);
  const snapshots = new Snapshots(db.collection('snapshots'), artifacts, pool);
  const training = new TrainingRuns(db.collection('training-runs'), pool, snapshots, models, artifacts, {
    runner: options.runner ?? (() => Promise.reject(new Error('no training in these tests'))),
    codeVersion: 'test',
    now,
    log,
    ...(options.onTrainingSaved ? { onSaved: options.onTrainingSaved } : {}),
  });
  const drift = new DriftReports(db.collection('drift-latest'), db.collection('drift-history'), { now });
  const retrains = new RetrainLoop(db.collection('retrain-policies'), db.collection('retrains'), {
    pool,
    training,
    models,
    rollouts,
    devices,
    drift,
    now,
    log,
  });
  const audit = new AuditLog(db, now);
  const telemetry = new TelemetryWindows(db.collection('telemetry-windows'), { now });
  const app = createApi({
    tokens,
    devices,
    models,
    rollouts,
    artifacts,
    pool,
    snapshots,
    training,
    drift,
    retrains,
    audit,
    changes: options.changes ?? new ChangeFeed(),
    telemetry,
    keys,
    publicUrl: 'http://fleet.test',
    publicMqttUrl: 'mqtt://fleet.test:1883',
    version: 'test',
    log,
  });
  return { app, admin, tokens, devices, models, rollouts, training, drift, audit, telemetry };
}
