/**
 * Rollout records and the pure rules that move them: a rollout's spec (model, targets, strategy) never
 * changes after creation; its status is the per-device state, moved only by device reports. No I/O here.
 * Invariants: a device's terminal state (active, failed) is final within a rollout; reports for unknown
 * command ids change nothing; the phase is derived, never stored.
 */
import type { ModelRef, Reason, UpdateMessage, UpdateState } from '../../shared/protocol/messages.js';
import { TERMINAL_UPDATE_STATES } from '../../shared/protocol/messages.js';

export type DeviceRolloutState = 'pending' | UpdateState;

export interface RolloutDevice {
  deviceId: string;
  commandId: string;
  state: DeviceRolloutState;
  reason: Reason | null;
  executionProvider: string | null;
  updatedAt: string;
}

export interface RolloutTargets {
  devices?: string[] | undefined;
  tags?: Record<string, string> | undefined;
}

export interface RolloutRecord {
  id: string;
  model: ModelRef;
  targets: RolloutTargets;
  strategy: 'all-at-once';
  createdAt: string;
  createdBy: string;
  devices: RolloutDevice[];
}

export type RolloutPhase = 'progressing' | 'succeeded' | 'failed';

export interface RolloutSummary {
  total: number;
  pending: number;
  inProgress: number;
  active: number;
  failed: number;
}

export function isTerminal(state: DeviceRolloutState): boolean {
  return (TERMINAL_UPDATE_STATES as readonly string[]).includes(state);
}

export function summaryOf(rollout: RolloutRecord): RolloutSummary {
  const summary: RolloutSummary = {
    total: rollout.devices.length,
    pending: 0,
    inProgress: 0,
    active: 0,
    failed: 0,
  };
  for (const d of rollout.devices) {
    if (d.state === 'pending') summary.pending++;
    else if (d.state === 'active') summary.active++;
    else if (d.state === 'failed') summary.failed++;
    else summary.inProgress++;
  }
  return summary;
}

export function phaseOf(rollout: RolloutRecord): RolloutPhase {
  const s = summaryOf(rollout);
  if (s.pending + s.inProgress > 0) return 'progressing';
  return s.failed > 0 ? 'failed' : 'succeeded';
}

/** Apply a device's update report. Returns the same object when nothing changes. */
export function applyUpdate(
  rollout: RolloutRecord,
  deviceId: string,
  report: UpdateMessage,
  now: Date,
): RolloutRecord {
  const index = rollout.devices.findIndex((d) => d.deviceId === deviceId && d.commandId === report.commandId);
  if (index < 0) return rollout;
  const current = rollout.devices[index]!;
  if (isTerminal(current.state)) return rollout;
  const next: RolloutDevice = {
    ...current,
    state: report.state,
    reason:
      report.reason ??
      (report.state === 'failed' ? { code: 'unknown', message: 'no reason given' } : current.reason),
    executionProvider: report.executionProvider ?? current.executionProvider,
    updatedAt: now.toISOString(),
  };
  const devices = rollout.devices.slice();
  devices[index] = next;
  return { ...rollout, devices };
}

/** Devices of this rollout still waiting on `deviceId`'s install (re-sent when it comes back online). */
export function unfinishedFor(rollout: RolloutRecord, deviceId: string): RolloutDevice | undefined {
  return rollout.devices.find((d) => d.deviceId === deviceId && !isTerminal(d.state));
}
