/**
 * Everything the HTTP API is built from, handed in by the composition root (main.ts). Each route module takes
 * only the part it uses (`Pick<ApiDeps, …>`), so what a route can reach is written at its door.
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import type { DeviceRegistry } from '../devices/registry.js';
import type { DriftReports } from '../drift/reports.js';
import type { Pool } from '../pool/pool.js';
import type { Snapshots } from '../pool/snapshots.js';
import type { KeyRing } from '../registry/keys.js';
import type { ModelRegistry } from '../registry/models.js';
import type { RetrainLoop } from '../retrain/loop.js';
import type { RolloutController } from '../rollouts/controller.js';
import type { ArtifactStore } from '../store/artifacts.js';
import type { TelemetryWindows } from '../telemetry/windows.js';
import type { TrainingRuns } from '../training/runs.js';
import type { ChangeFeed } from './changes.js';
import type { OperatorTokens } from './tokens.js';

export interface ApiDeps {
  tokens: OperatorTokens;
  devices: DeviceRegistry;
  models: ModelRegistry;
  rollouts: RolloutController;
  artifacts: ArtifactStore;
  pool: Pool;
  snapshots: Snapshots;
  training: TrainingRuns;
  drift: DriftReports;
  retrains: RetrainLoop;
  audit: AuditLog;
  /** Rollouts, training runs and devices whose state moved: the events stream's `update`s. */
  changes: ChangeFeed;
  /** Per-device telemetry windows, for the console's device charts. */
  telemetry: TelemetryWindows;
  keys: KeyRing;
  /** URLs handed to devices at enrollment. */
  publicUrl: string;
  publicMqttUrl: string;
  version: string;
  log: Logger;
}
