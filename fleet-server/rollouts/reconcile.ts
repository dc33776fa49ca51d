/**
 * The pure rules that move a rollout: a device's report (`planUpdate`), a device that joins a finished
 * rollout's targets later (`planJoin`), and `planReconcile`, which looks at the rollout, the fleet's view and
 * the clock and plans the next head, the changed devices, the commands to send and when to look again. No
 * I/O: the controller persists what a plan returns BEFORE sending its commands, so a crash can only ever
 * re-send (devices are idempotent by command id), never lose a decision.
 *
 * Work per call is proportional to what changed, not to the number of devices: the book's indexes answer
 * "is the cohort finished?", "which devices are due a re-send or a timeout?" in O(log n) (book.ts). Only a
 * gate measurement (every `intervalS`, not per report) walks every device.
 *
 * `applyUpdate`, `reconcile` and `join` are the same rules on whole records (O(n) per call: they build a
 * book), for callers that hold a record rather than a book.
 */

import type { Step } from '../../shared/api/rollouts.js';
import type { Reason, UpdateMessage } from '../../shared/protocol/messages.js';
import { describeStep } from '../../shared/rollout-steps.js';
import { Draft, dueAt, type Plan, RolloutBook } from './book.js';
import { type FleetView, measure, type StepOutcome } from './measure.js';
import {
  abortWith,
  installOf,
  isFinished,
  type PlannedCommand,
  RESEND_AFTER_MS,
  type ReconcileResult,
  type RolloutDevice,
  type RolloutRecord,
  resendOf,
  withStatus,
} from './record.js';
import { cohortSize, DEFAULT_SHADOW_GATES } from './spec.js';

/** A device's update report: the device's new entry, or null when the report changes nothing. */
export function planUpdate(
  book: Pick<RolloutBook, 'get'>,
  deviceId: string,
  report: UpdateMessage,
  now: Date,
): RolloutDevice | null {
  const current = book.get(deviceId);
  if (!current) return null;
  const at = now.toISOString();
  let next: RolloutDevice | null = null;
  if (report.commandId === current.rollbackId && report.commandId !== null) {
    if (current.state === 'rolled_back') return null;
    if (report.state === 'rolled_back' || report.state === 'failed') {
      next = { ...current, state: report.state, reason: report.reason ?? current.reason, updatedAt: at };
    }
  } else if (report.commandId === current.commandId && current.commandId !== null) {
    // Install progress. Once finished, only an activation of a shadowing candidate moves it on.
    if (current.state === 'rolled_back' || current.state === 'skipped') return null;
    if ((current.state === 'active' || current.state === 'failed') && report.state !== 'rolled_back')
      return null;
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
    return null;
  return next;
}

/** Apply a device's update report to a whole record. Returns the same object when nothing changes. */
export function applyUpdate(
  rollout: RolloutRecord,
  deviceId: string,
  report: UpdateMessage,
  now: Date,
): RolloutRecord {
  const index = rollout.devices.findIndex((d) => d.deviceId === deviceId);
  if (index < 0) return rollout;
  const next = planUpdate({ get: () => rollout.devices[index] }, deviceId, report, now);
  if (!next) return rollout;
  const devices = rollout.devices.slice();
  devices[index] = next;
  return { ...rollout, devices };
}

/** A device joining a finished rollout's targets: with the variant it gets, or without one (and why). */
export type Joiner =
  | { deviceId: string; variant: string }
  | { deviceId: string; variant: null; reason: Reason };

/**
 * A device that matches a succeeded rollout's tag targets but was never part of it (it enrolled later)
 * joins it: waiting, so the next reconcile sends it the install and then re-sends and times it out like
 * any other device; or skipped, with the reason, when no variant of the version fits it. Null when it is
 * already a target.
 */
export function planJoin(book: RolloutBook, joiner: Joiner, now: Date): Plan | null {
  if (book.get(joiner.deviceId)) return null;
  const at = now.toISOString();
  const draft = new Draft(book);
  draft.set({
    deviceId: joiner.deviceId,
    rank: book.size,
    state: joiner.variant === null ? 'skipped' : 'waiting',
    commandId: null,
    mode: null,
    shadowPercent: null,
    activateId: null,
    rollbackId: null,
    reason: joiner.variant === null ? joiner.reason : null,
    executionProvider: null,
    ...(joiner.variant === null ? {} : { variant: joiner.variant }),
    sentAt: null,
    issuedAt: null,
    updatedAt: at,
  });
  draft.head = withStatus(
    draft.head,
    now,
    {},
    'joined',
    joiner.variant === null
      ? `${joiner.deviceId} joined the targets later but no variant fits it (${joiner.reason.message}): skipped`
      : `${joiner.deviceId} joined the targets later: installing the production version (variant ${joiner.variant})`,
  );
  return draft.plan([], null);
}

/** `planJoin` on a whole record. */
export function join(rollout: RolloutRecord, joiner: Joiner, now: Date): RolloutRecord {
  const book = RolloutBook.from(rollout);
  const plan = planJoin(book, joiner, now);
  if (!plan) return rollout;
  book.apply(plan);
  return book.toRecord();
}

/**
 * Move the rollout as far as the book, the view and the clock allow. Idempotent: planning again on the
 * result at the same instant changes nothing and plans no command.
 */
export function planReconcile(book: RolloutBook, view: FleetView, now: Date, newId: () => string): Plan {
  const commands: PlannedCommand[] = [];
  const at = now.toISOString();
  const nowMs = now.getTime();
  const draft = new Draft(book);
  let nextCheckAt: number | null = null;
  const wakeAt = (ms: number) => {
    nextCheckAt = nextCheckAt === null ? ms : Math.min(nextCheckAt, ms);
  };
  const setDevice = (d: RolloutDevice, patch: Partial<RolloutDevice>) => {
    draft.set({ ...d, ...patch, updatedAt: at });
  };
  const phase = () => draft.head.status.phase;

  // Re-sends and timeouts of commands still waiting for a report: only the devices due now. In a finished
  // rollout only late joiners can be waiting.
  if (phase() !== 'paused') {
    const spec = draft.head.spec;
    for (const deviceId of book.dueBy(nowMs)) {
      const d = draft.get(deviceId)!;
      const issued = Date.parse(d.issuedAt!);
      if (nowMs - issued >= spec.deviceTimeoutS * 1000) {
        const skip = spec.onDeviceTimeout === 'skip';
        setDevice(d, {
          state: skip ? 'skipped' : 'failed',
          reason: {
            code: 'device_timeout',
            message: `no finished install within ${spec.deviceTimeoutS} s (last state ${d.state})`,
          },
        });
        continue;
      }
      const resend = resendOf(d);
      if (resend && nowMs - Date.parse(d.sentAt!) >= RESEND_AFTER_MS) {
        commands.push(resend);
        setDevice(d, { sentAt: at });
      }
    }
  }

  // Walk the steps: each pass either finishes the current step (and continues) or stops to wait.
  const steps = draft.head.spec.steps;
  for (let guard = 0; guard < steps.length + 2 && phase() === 'progressing'; guard++) {
    const index = draft.head.status.step;
    if (index >= steps.length) {
      const failed = draft.countState('failed') > 0;
      draft.head = withStatus(
        draft.head,
        now,
        { phase: failed ? 'failed' : 'succeeded' },
        failed ? 'failed' : 'succeeded',
        failed ? 'every step done, some devices failed' : 'every target runs the new version',
      );
      break;
    }
    const step = steps[index]!;
    const outcome = runStep(draft, step, view, now, newId, commands);
    draft.head = outcome.rollout;
    if (outcome.wakeAt !== null) wakeAt(outcome.wakeAt);
    if (outcome.done === 'advance') {
      draft.head = withStatus(
        draft.head,
        now,
        { step: index + 1, stepStartedAt: at, analysis: null },
        'step',
        `step ${index + 1} (${describeStep(step)}) done`,
      );
      continue;
    }
    break;
  }

  // A succeeded rollout installs its version on devices that joined its targets later.
  if (phase() === 'succeeded') {
    for (const d of draft.members('waiting')) include(draft, d, 'activate', 100, newId, commands, at);
  }

  // An abort (by a gate just now, or earlier) rolls back every device that got the new version —
  // active, shadowing, or still installing. Never-sent devices have nothing to leave; a failed install kept
  // the previous model serving.
  if (phase() === 'aborted') {
    const reason = draft.head.status.abort!.reason;
    for (const d of draft.members('needsRollback')) {
      const id = newId();
      commands.push({ kind: 'rollback', deviceId: d.deviceId, id, reason });
      setDevice(d, { rollbackId: id, sentAt: at, reason });
    }
    const unsettled =
      draft.size -
      draft.countState('waiting') -
      draft.countState('rolled_back') -
      draft.countState('failed') -
      draft.countState('skipped');
    if (unsettled === 0) {
      draft.head = withStatus(
        draft.head,
        now,
        { phase: 'rolled_back' },
        'rolled_back',
        'every device that got the new version left it',
      );
    }
  }

  // When the next re-send or timeout falls due: the earliest among devices this plan left alone, and
  // those it changed. Nothing is due while paused (an operator resumes).
  if (phase() !== 'paused') {
    const spec = draft.head.spec;
    const later = book.nextDueAfter(nowMs, new Set(draft.changes.keys()));
    if (later !== null) wakeAt(later);
    for (const d of draft.changes.values()) {
      const due = dueAt(d, spec.deviceTimeoutS);
      if (due !== null) wakeAt(due);
    }
  }

  return draft.plan(commands, nextCheckAt);
}

/**
 * `planReconcile` on a whole record: the next record (the same object when nothing changed), the commands
 * and when to look again.
 */
export function reconcile(
  rollout: RolloutRecord,
  view: FleetView,
  now: Date,
  newId: () => string,
): ReconcileResult {
  const book = RolloutBook.from(rollout);
  const plan = planReconcile(book, view, now, newId);
  if (plan.head === book.head && plan.changes.size === 0)
    return { rollout, commands: plan.commands, nextCheckAt: plan.nextCheckAt };
  book.apply(plan);
  return { rollout: book.toRecord(), commands: plan.commands, nextCheckAt: plan.nextCheckAt };
}

function include(
  draft: Draft,
  d: RolloutDevice,
  mode: 'activate' | 'shadow',
  shadowPercent: number,
  newId: () => string,
  commands: PlannedCommand[],
  at: string,
): void {
  const id = newId();
  commands.push({ kind: 'install', deviceId: d.deviceId, id, mode, shadowPercent });
  draft.set({
    ...d,
    state: 'pending',
    commandId: id,
    mode,
    shadowPercent,
    sentAt: at,
    issuedAt: at,
    updatedAt: at,
  });
}

function runStep(
  draft: Draft,
  step: Step,
  view: FleetView,
  now: Date,
  newId: () => string,
  commands: PlannedCommand[],
): StepOutcome {
  const at = now.toISOString();
  const r = draft.head;

  if ('setPercent' in step) {
    const size = cohortSize(step.setPercent, draft.size);
    for (const d of draft.members('waiting', size)) include(draft, d, 'activate', 100, newId, commands, at);
    for (const d of draft.members('unactivatedShadow', size)) {
      const id = newId();
      commands.push({ kind: 'activate', deviceId: d.deviceId, id });
      draft.set({ ...d, activateId: id, sentAt: at, issuedAt: at, updatedAt: at });
    }
    return { rollout: r, done: draft.count('unfinished', size) === 0 ? 'advance' : 'wait', wakeAt: null };
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
    const size = cohortSize(step.shadow.cohortPercent, draft.size);
    for (const d of draft.members('waiting', size))
      include(draft, d, 'shadow', step.shadow.percent, newId, commands, at);
    // Measuring starts once every device of the cohort that can shadow does.
    if (draft.count('notShadowReady', size) > 0) return { rollout: r, done: 'wait', wakeAt: null };
    if (draft.count('shadowing', size) === 0) {
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
    return measure(
      r,
      () => draft.all(),
      gates,
      step.shadow.durationS,
      step.shadow.intervalS,
      'shadow',
      view,
      now,
    );
  }

  // analysis
  return measure(
    r,
    () => draft.all(),
    step.analysis.gates ?? r.spec.gates,
    step.analysis.windowS,
    step.analysis.intervalS,
    'analysis',
    view,
    now,
  );
}

/**
 * The command of this rollout `deviceId` still owes an answer to (re-sent when it comes back online): a
 * rollback under way, an activation, or an install — also a late joiner's install in a succeeded rollout.
 */
export function unfinishedFor(
  rollout: Pick<RolloutRecord, 'status'> & { devices?: readonly RolloutDevice[] },
  deviceId: string,
  device?: RolloutDevice,
): PlannedCommand | null {
  const d = device ?? rollout.devices?.find((x) => x.deviceId === deviceId);
  if (!d) return null;
  if (d.rollbackId && d.state !== 'rolled_back' && d.state !== 'failed')
    return {
      kind: 'rollback',
      deviceId,
      id: d.rollbackId,
      reason: d.reason ?? { code: 'rollback', message: 'rollback' },
    };
  const phase = rollout.status.phase;
  if (phase === 'aborted' || phase === 'rolled_back' || phase === 'failed') return null;
  if (d.activateId && d.state !== 'active' && !isFinished(d.state))
    return { kind: 'activate', deviceId, id: d.activateId };
  if (d.commandId && !isFinished(d.state) && d.state !== 'shadowing') return installOf(d);
  return null;
}
