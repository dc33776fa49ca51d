/**
 * The pure rules that move a rollout: device reports (`applyUpdate`), and `reconcile`, which looks at the
 * record, the fleet's view and the clock and returns the next record, the commands to send and when to look
 * again. No I/O: the controller persists what reconcile returns BEFORE sending its commands, so a crash can
 * only ever re-send (devices are idempotent by command id), never lose a decision.
 */
import type { UpdateMessage } from '../../shared/protocol/messages.js';
import { describeStep } from '../../shared/rollout-steps.js';
import { type FleetView, measure, type StepOutcome } from './measure.js';
import {
  abortWith,
  isFinal,
  isFinished,
  type PlannedCommand,
  RESEND_AFTER_MS,
  type ReconcileResult,
  type RolloutDevice,
  type RolloutRecord,
  withStatus,
} from './record.js';
import { cohortSize, DEFAULT_SHADOW_GATES, type Step } from './spec.js';

/** Apply a device's update report. Returns the same object when nothing changes. */
export function applyUpdate(
  rollout: RolloutRecord,
  deviceId: string,
  report: UpdateMessage,
  now: Date,
): RolloutRecord {
  const index = rollout.devices.findIndex((d) => d.deviceId === deviceId);
  if (index < 0) return rollout;
  const current = rollout.devices[index]!;
  const at = now.toISOString();
  let next: RolloutDevice | null = null;
  if (report.commandId === current.rollbackId && report.commandId !== null) {
    if (current.state === 'rolled_back') return rollout;
    if (report.state === 'rolled_back' || report.state === 'failed') {
      next = {
        ...current,
        state: report.state,
        reason: report.reason ?? current.reason,
        updatedAt: at,
      };
    }
  } else if (report.commandId === current.commandId && current.commandId !== null) {
    // Install progress. Once finished, only an activation of a shadowing candidate moves it on.
    if (current.state === 'rolled_back' || current.state === 'skipped') return rollout;
    if ((current.state === 'active' || current.state === 'failed') && report.state !== 'rolled_back')
      return rollout;
    next = {
      ...current,
      state: report.state,
      reason:
        report.reason ??
        (report.state === 'failed' ? { code: 'unknown', message: 'no reason given' } : current.reason),
      executionProvider: report.executionProvider ?? current.executionProvider,
      updatedAt: at,
    };
  }
  if (
    !next ||
    (next.state === current.state &&
      next.reason === current.reason &&
      next.executionProvider === current.executionProvider)
  )
    return rollout;
  const devices = rollout.devices.slice();
  devices[index] = next;
  return { ...rollout, devices };
}

/**
 * Move the rollout as far as the record, the view and the clock allow. Idempotent: reconciling the result
 * again at the same instant changes nothing and plans no command.
 */
export function reconcile(
  rollout: RolloutRecord,
  view: FleetView,
  now: Date,
  newId: () => string,
): ReconcileResult {
  const commands: PlannedCommand[] = [];
  const at = now.toISOString();
  let r = rollout;
  let nextCheckAt: number | null = null;
  const wakeAt = (ms: number) => {
    nextCheckAt = nextCheckAt === null ? ms : Math.min(nextCheckAt, ms);
  };
  const setDevice = (deviceId: string, patch: Partial<RolloutDevice>) => {
    r = {
      ...r,
      devices: r.devices.map((d) => (d.deviceId === deviceId ? { ...d, ...patch, updatedAt: at } : d)),
    };
  };

  // Timeouts and re-sends of commands still waiting for a report.
  if (r.status.phase !== 'paused' && !isFinal(r.status.phase)) {
    const timeoutMs = r.spec.deviceTimeoutS * 1000;
    for (const d of r.devices) {
      if (isFinished(d.state) || d.state === 'waiting' || !d.sentAt) continue;
      if (d.state === 'shadowing' && !d.activateId && !d.rollbackId) continue; // waiting on the fleet, not the device
      const sent = Date.parse(d.sentAt);
      if (now.getTime() - sent >= timeoutMs && !d.rollbackId) {
        const skip = r.spec.onDeviceTimeout === 'skip';
        setDevice(d.deviceId, {
          state: skip ? 'skipped' : 'failed',
          reason: {
            code: 'device_timeout',
            message: `no finished install within ${r.spec.deviceTimeoutS} s (last state ${d.state})`,
          },
        });
        continue;
      }
      if (now.getTime() - sent >= RESEND_AFTER_MS) {
        const resend = resendOf(d);
        if (resend) {
          commands.push(resend);
          setDevice(d.deviceId, { sentAt: at });
        }
      } else {
        wakeAt(sent + RESEND_AFTER_MS);
      }
      if (!d.rollbackId) wakeAt(sent + timeoutMs);
    }
  }

  // Walk the steps: each pass either finishes the current step (and continues) or stops to wait.
  for (let guard = 0; guard < r.spec.steps.length + 2 && r.status.phase === 'progressing'; guard++) {
    const index = r.status.step;
    if (index >= r.spec.steps.length) {
      const failed = r.devices.some((d) => d.state === 'failed');
      r = withStatus(
        r,
        now,
        { phase: failed ? 'failed' : 'succeeded' },
        failed ? 'failed' : 'succeeded',
        failed ? 'every step done, some devices failed' : 'every target runs the new version',
      );
      break;
    }
    const step = r.spec.steps[index]!;
    const outcome = runStep(r, step, view, now, newId, commands);
    r = outcome.rollout;
    if (outcome.wakeAt !== null) wakeAt(outcome.wakeAt);
    if (outcome.done === 'advance') {
      r = withStatus(
        r,
        now,
        { step: index + 1, stepStartedAt: at, analysis: null },
        'step',
        `step ${index + 1} (${describeStep(step)}) done`,
      );
      continue;
    }
    break;
  }

  // An abort (by a gate just now, or earlier) rolls back every device that got the new version.
  if (r.status.phase === 'aborted') {
    for (const d of r.devices) {
      // Everything that received the new version — active, shadowing, or still installing — is told to leave
      // it. Never-sent devices have nothing to leave; a failed install kept the previous model serving.
      if (['waiting', 'skipped', 'rolled_back', 'failed'].includes(d.state) || d.rollbackId) continue;
      const id = newId();
      commands.push({ kind: 'rollback', deviceId: d.deviceId, id, reason: r.status.abort!.reason });
      setDevice(d.deviceId, { rollbackId: id, sentAt: at, reason: r.status.abort!.reason });
    }
    const settled = r.devices.every((d) => ['waiting', 'rolled_back', 'failed', 'skipped'].includes(d.state));
    if (settled) {
      r = withStatus(
        r,
        now,
        { phase: 'rolled_back' },
        'rolled_back',
        'every device that got the new version left it',
      );
    }
  }

  return { rollout: r, commands, nextCheckAt: nextCheckAt === null ? null : new Date(nextCheckAt) };
}

function resendOf(d: RolloutDevice): PlannedCommand | null {
  if (d.rollbackId) return null; // rollbacks are re-sent on reconnect only; they never time out
  if (d.activateId && d.state !== 'active')
    return { kind: 'activate', deviceId: d.deviceId, id: d.activateId };
  if (d.commandId && d.state === 'pending') return installOf(d);
  return null;
}

function installOf(d: RolloutDevice): PlannedCommand {
  return {
    kind: 'install',
    deviceId: d.deviceId,
    id: d.commandId!,
    mode: d.mode ?? 'activate',
    shadowPercent: d.shadowPercent ?? 100,
  };
}

function runStep(
  rollout: RolloutRecord,
  step: Step,
  view: FleetView,
  now: Date,
  newId: () => string,
  commands: PlannedCommand[],
): StepOutcome {
  const at = now.toISOString();
  let r = rollout;
  const include = (d: RolloutDevice, mode: 'activate' | 'shadow', shadowPercent: number) => {
    const id = newId();
    commands.push({ kind: 'install', deviceId: d.deviceId, id, mode, shadowPercent });
    r = {
      ...r,
      devices: r.devices.map((x) =>
        x.deviceId === d.deviceId
          ? { ...x, state: 'pending', commandId: id, mode, shadowPercent, sentAt: at, updatedAt: at }
          : x,
      ),
    };
  };

  if ('setPercent' in step) {
    const size = cohortSize(step.setPercent, r.devices.length);
    for (const d of r.devices) {
      if (d.rank >= size) continue;
      if (d.state === 'waiting') include(d, 'activate', 100);
      else if (d.state === 'shadowing' && !d.activateId) {
        const id = newId();
        commands.push({ kind: 'activate', deviceId: d.deviceId, id });
        r = {
          ...r,
          devices: r.devices.map((x) =>
            x.deviceId === d.deviceId ? { ...x, activateId: id, sentAt: at, updatedAt: at } : x,
          ),
        };
      }
    }
    const cohort = r.devices.filter((d) => d.rank < size);
    return { rollout: r, done: cohort.every((d) => isFinished(d.state)) ? 'advance' : 'wait', wakeAt: null };
  }

  if ('pause' in step) {
    if (step.pause.durationS === undefined) {
      return {
        rollout: withStatus(
          r,
          now,
          {
            phase: 'paused',
            pause: {
              kind: 'step',
              reason: { code: 'pause_step', message: 'paused by the rollout spec until an operator resumes' },
              at,
              by: 'rollout',
            },
          },
          'paused',
          'pause step: waiting for an operator to resume',
        ),
        done: 'wait',
        wakeAt: null,
      };
    }
    const until = Date.parse(r.status.stepStartedAt) + step.pause.durationS * 1000;
    return now.getTime() >= until
      ? { rollout: r, done: 'advance', wakeAt: null }
      : { rollout: r, done: 'wait', wakeAt: until };
  }

  if ('shadow' in step) {
    const size = cohortSize(step.shadow.cohortPercent, r.devices.length);
    for (const d of r.devices)
      if (d.rank < size && d.state === 'waiting') include(d, 'shadow', step.shadow.percent);
    // Measuring starts once every device of the cohort that can shadow does.
    const cohort = r.devices.filter((d) => d.rank < size);
    const ready = cohort.every((d) => d.state === 'shadowing' || isFinished(d.state));
    if (!ready) return { rollout: r, done: 'wait', wakeAt: null };
    if (!cohort.some((d) => d.state === 'shadowing')) {
      return {
        rollout: abortWith(
          r,
          { code: 'no_shadow', message: 'no device could load the candidate for shadowing' },
          'gate',
          now,
        ),
        done: 'wait',
        wakeAt: null,
      };
    }
    const gates = (step.shadow.gates ?? DEFAULT_SHADOW_GATES).map((g) =>
      g.metric === 'shadow_agreement' && !step.shadow.gates
        ? { ...g, threshold: step.shadow.minAgreement }
        : g,
    );
    return measure(r, gates, step.shadow.durationS, step.shadow.intervalS, 'shadow', view, now);
  }

  // analysis
  return measure(
    r,
    step.analysis.gates ?? r.spec.gates,
    step.analysis.windowS,
    step.analysis.intervalS,
    'analysis',
    view,
    now,
  );
}

/** Devices of this rollout still waiting on `deviceId` (re-sent when it comes back online). */
export function unfinishedFor(rollout: RolloutRecord, deviceId: string): PlannedCommand | null {
  const d = rollout.devices.find((x) => x.deviceId === deviceId);
  if (!d) return null;
  if (d.rollbackId && d.state !== 'rolled_back' && d.state !== 'failed')
    return {
      kind: 'rollback',
      deviceId,
      id: d.rollbackId,
      reason: d.reason ?? { code: 'rollback', message: 'rollback' },
    };
  if (isFinal(rollout.status.phase) || rollout.status.phase === 'aborted') return null;
  if (d.activateId && d.state !== 'active' && !isFinished(d.state))
    return { kind: 'activate', deviceId, id: d.activateId };
  if (d.commandId && !isFinished(d.state) && d.state !== 'shadowing') return installOf(d);
  return null;
}
