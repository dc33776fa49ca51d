/**
 * A rollout as stored: the spec (model, targets, steps, gates), which never changes after creation, the
 * status (phase, step, pause, analysis, abort, events) and one entry per targeted device. What moves a record
 * lives beside it: `reconcile.ts` (device reports, timeouts, steps, late joins), `actions.ts` (which operator
 * action each phase allows) and `measure.ts` (gate measurements). All of it pure; the controller persists.
 *
 * Device states in a rollout: `waiting` (not in a cohort yet: never sent anything), `pending` (a command is
 * out, no report yet), the agent's update states, and `skipped` (timed out with onDeviceTimeout=skip).
 * Finished: active, failed, rolled_back, skipped. A device outside the cohorts reached so far is never sent
 * the new version.
 */

import type { RolloutSpec } from '../../shared/api/rollouts.js';
import type { ModelRef, Reason, UpdateState } from '../../shared/protocol/messages.js';
import type { Migrations } from '../store/migrations.js';
import type { GateResult, Verdict } from './gates.js';

export type DeviceRolloutState = 'waiting' | 'pending' | 'skipped' | UpdateState;

export interface RolloutDevice {
  deviceId: string;
  /** Position in the cohort order (0 first), from the stable hash of device id and rollout id. */
  rank: number;
  state: DeviceRolloutState;
  /** The install command (its id covers the whole install, activation included). */
  commandId: string | null;
  mode: 'activate' | 'shadow' | null;
  /** Share of live requests mirrored, for a shadow install. */
  shadowPercent: number | null;
  activateId: string | null;
  rollbackId: string | null;
  /** Why it failed, was skipped or rolled back. */
  reason: Reason | null;
  executionProvider: string | null;
  /**
   * The variant of the version this device installs (the first its profile accepts that the version has).
   * Absent on records written before variants: those devices got the version's first variant.
   */
  variant?: string | undefined;
  /** When the latest command (or its latest re-send) went out: re-sends count from here. */
  sentAt: string | null;
  /**
   * When the current command was first issued: the device timeout counts from here, so re-sending a command
   * does not restart the device's time to answer it.
   */
  issuedAt: string | null;
  updatedAt: string;
}

export interface RolloutTargets {
  devices?: string[] | undefined;
  tags?: Record<string, string> | undefined;
}

export type RolloutPhase = 'progressing' | 'paused' | 'succeeded' | 'failed' | 'aborted' | 'rolled_back';
export const FINAL_PHASES: readonly RolloutPhase[] = ['succeeded', 'failed', 'rolled_back'];

export interface Measurement {
  at: string;
  verdict: Verdict;
  gates: GateResult[];
}

export interface RolloutStatus {
  phase: RolloutPhase;
  /** Index into spec.steps; equals steps.length once every step is done. */
  step: number;
  stepStartedAt: string;
  pause: { kind: 'operator' | 'step' | 'inconclusive'; reason: Reason; at: string; by: string } | null;
  /** The running analysis (or shadow measurement) of the current step. */
  analysis: {
    step: number;
    startedAt: string;
    lastAt: string | null;
    failures: Partial<Record<string, number>>;
    /** The latest measurements, newest last (bounded). */
    measurements: Measurement[];
  } | null;
  abort: { reason: Reason; by: string; at: string } | null;
  /**
   * The latest measurement of each step that measured gates, in step order: a step's gate values outlive
   * its analysis (which ends in the same write as its last measurement), so operators see why it advanced.
   * Absent on records written before it existed.
   */
  measured?: (Measurement & { step: number })[];
  /** What happened, newest last (bounded). */
  events: { at: string; type: string; message: string }[];
  updatedAt: string;
}

export interface RolloutRecord {
  id: string;
  model: ModelRef;
  targets: RolloutTargets;
  spec: RolloutSpec;
  createdAt: string;
  createdBy: string;
  status: RolloutStatus;
  devices: RolloutDevice[];
}

/** A rollout without its devices: what operator actions and step transitions change. */
export type RolloutHead = Omit<RolloutRecord, 'devices'>;

export interface RolloutSummary {
  total: number;
  waiting: number;
  pending: number;
  inProgress: number;
  shadowing: number;
  active: number;
  failed: number;
  rolledBack: number;
  skipped: number;
}

/** A command reconcile plans; the controller sends it after persisting the record that plans it. */
export type PlannedCommand =
  | { kind: 'install'; deviceId: string; id: string; mode: 'activate' | 'shadow'; shadowPercent: number }
  | { kind: 'activate'; deviceId: string; id: string }
  | { kind: 'rollback'; deviceId: string; id: string; reason: Reason };

/** The command a device still owes an answer to that a re-send would repeat, or null. */
export function resendOf(d: RolloutDevice): PlannedCommand | null {
  if (d.rollbackId) return null; // rollbacks are re-sent on reconnect only; they never time out
  if (d.activateId && d.state !== 'active')
    return { kind: 'activate', deviceId: d.deviceId, id: d.activateId };
  if (d.commandId && d.state === 'pending') return installOf(d);
  return null;
}

export function installOf(d: RolloutDevice): PlannedCommand {
  return {
    kind: 'install',
    deviceId: d.deviceId,
    id: d.commandId!,
    mode: d.mode ?? 'activate',
    shadowPercent: d.shadowPercent ?? 100,
  };
}

export interface ReconcileResult {
  rollout: RolloutRecord;
  commands: PlannedCommand[];
  /** When to reconcile again even if nothing is reported; null: only on reports or actions. */
  nextCheckAt: Date | null;
}

/** Re-send a command that got no report for this long (devices ignore a command id they have seen). */
export const RESEND_AFTER_MS = 30_000;
/** Events kept per rollout, newest last. */
export const MAX_EVENTS = 200;
const FINISHED: readonly DeviceRolloutState[] = ['active', 'failed', 'rolled_back', 'skipped'];

export function isFinished(state: DeviceRolloutState): boolean {
  return FINISHED.includes(state);
}

export function isFinal(phase: RolloutPhase): boolean {
  return FINAL_PHASES.includes(phase);
}

export function summaryOf(rollout: RolloutRecord): RolloutSummary {
  const s: RolloutSummary = {
    total: rollout.devices.length,
    waiting: 0,
    pending: 0,
    inProgress: 0,
    shadowing: 0,
    active: 0,
    failed: 0,
    rolledBack: 0,
    skipped: 0,
  };
  for (const d of rollout.devices) {
    if (d.state === 'waiting') s.waiting++;
    else if (d.state === 'pending') s.pending++;
    else if (d.state === 'shadowing') s.shadowing++;
    else if (d.state === 'active') s.active++;
    else if (d.state === 'failed') s.failed++;
    else if (d.state === 'rolled_back') s.rolledBack++;
    else if (d.state === 'skipped') s.skipped++;
    else s.inProgress++;
  }
  return s;
}

export function phaseOf(rollout: RolloutRecord): RolloutPhase {
  return rollout.status.phase;
}

/** The percentage the rollout has reached: the largest setPercent among the steps already started. */
export function currentPercent(rollout: Pick<RolloutRecord, 'spec' | 'status'>): number {
  let percent = 0;
  rollout.spec.steps.forEach((step, i) => {
    if (i <= rollout.status.step && 'setPercent' in step) percent = Math.max(percent, step.setPercent);
  });
  return percent;
}

/**
 * A new rollout's record: every target waiting, in cohort order. `cohortKey` maps device id → cohort key;
 * `variants` the variant each device gets (`default` for a device it does not name).
 */
export function newRollout(input: {
  id: string;
  model: ModelRef;
  targets: RolloutTargets;
  spec: RolloutSpec;
  deviceIds: readonly string[];
  cohortKey: (deviceId: string) => number;
  variants?: ReadonlyMap<string, string> | undefined;
  actor: string;
  now: Date;
}): RolloutRecord {
  const at = input.now.toISOString();
  const ordered = [...input.deviceIds].sort(
    (a, b) => input.cohortKey(a) - input.cohortKey(b) || (a < b ? -1 : 1),
  );
  const rank = new Map(ordered.map((id, i) => [id, i]));
  return {
    id: input.id,
    model: input.model,
    targets: input.targets,
    spec: input.spec,
    createdAt: at,
    createdBy: input.actor,
    status: {
      phase: 'progressing',
      step: 0,
      stepStartedAt: at,
      pause: null,
      analysis: null,
      abort: null,
      events: [
        {
          at,
          type: 'created',
          message: `${input.spec.strategy} rollout to ${ordered.length} device(s)${variantCounts(input.variants)}`,
        },
      ],
      updatedAt: at,
    },
    devices: [...input.deviceIds].sort().map((deviceId) => ({
      deviceId,
      rank: rank.get(deviceId)!,
      state: 'waiting',
      commandId: null,
      mode: null,
      shadowPercent: null,
      activateId: null,
      rollbackId: null,
      reason: null,
      executionProvider: null,
      variant: input.variants?.get(deviceId) ?? 'default',
      sentAt: null,
      issuedAt: null,
      updatedAt: at,
    })),
  };
}

/** ` (variants: default ×2, fp16 ×1)` when the devices get more than one variant, or one that is not `default`. */
function variantCounts(variants: ReadonlyMap<string, string> | undefined): string {
  const counts = new Map<string, number>();
  for (const v of variants?.values() ?? []) counts.set(v, (counts.get(v) ?? 0) + 1);
  if (counts.size === 0 || (counts.size === 1 && counts.has('default'))) return '';
  const parts = [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([v, n]) => `${v} ×${n}`);
  return ` (variants: ${parts.join(', ')})`;
}

export function abortWith<R extends Pick<RolloutRecord, 'status'>>(
  rollout: R,
  reason: Reason,
  by: string,
  now: Date,
): R {
  return withStatus(
    rollout,
    now,
    { phase: 'aborted', pause: null, abort: { reason, by, at: now.toISOString() } },
    'aborted',
    `${reason.code}: ${reason.message}`,
  );
}

export function withStatus<R extends Pick<RolloutRecord, 'status'>>(
  rollout: R,
  now: Date,
  patch: Partial<RolloutStatus>,
  event?: string,
  message?: string,
): R {
  const at = now.toISOString();
  const events = event
    ? [...rollout.status.events, { at, type: event, message: message ?? '' }].slice(-MAX_EVENTS)
    : rollout.status.events;
  return { ...rollout, status: { ...rollout.status, ...patch, events, updatedAt: at } };
}

/**
 * The rollouts collection's schema versions (store/migrations.ts). v2: each device records when its current
 * command was first issued (`issuedAt`, the device timeout counts from it); a v1 record's devices had only
 * `sentAt`, which is also when the command was issued unless it was re-sent since — the best a v1 record knows.
 */
export const ROLLOUT_MIGRATIONS: Migrations<RolloutRecord> = {
  name: 'rollouts',
  version: 2,
  steps: [
    (v1) => ({
      ...v1,
      devices: (v1.devices as Record<string, unknown>[]).map((d) => ({
        ...d,
        issuedAt: d.issuedAt ?? d.sentAt,
      })),
    }),
  ],
};
