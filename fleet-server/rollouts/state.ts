/**
 * Rollout records and the pure rules that move them. The spec (model, targets, steps, gates) never changes
 * after creation; the status moves by three things only: device reports (`applyUpdate`), operator actions
 * (`applyAction`) and `reconcile`, which looks at the record, the fleet's view and the clock and returns the
 * next record, the commands to send and when to look again. No I/O here: the controller persists what
 * reconcile returns BEFORE sending its commands, so a crash can only ever re-send (devices are idempotent by
 * command id), never lose a decision.
 *
 * Device states in a rollout: `waiting` (not in a cohort yet: never sent anything), `pending` (a command is
 * out, no report yet), the agent's update states, and `skipped` (timed out with onDeviceTimeout=skip).
 * Finished: active, failed, rolled_back, skipped. A device outside the cohorts reached so far is never sent
 * the new version.
 */
import type { ModelRef, Reason, UpdateMessage, UpdateState } from '../../shared/protocol/messages.js';
import {
  addTraffic,
  combine,
  emptyShadowTraffic,
  emptyTraffic,
  evaluateGate,
  type GateInputs,
  type GateResult,
  type ShadowTraffic,
  type Traffic,
  type Verdict,
} from './gates.js';
import {
  cohortSize,
  DEFAULT_SHADOW_GATES,
  describeStep,
  type Gate,
  type RolloutSpec,
  type Step,
} from './spec.js';

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
  /** When the latest command went out (timeouts and re-sends count from here). */
  sentAt: string | null;
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

/** What reconcile needs to know about the fleet beyond the record: telemetry since the analysis began. */
export interface FleetView {
  /** Per device, this model's traffic by version over the analysis window. */
  traffic: ReadonlyMap<string, ReadonlyMap<number, Omit<Traffic, 'devices'>>>;
  /** Per device, shadow comparisons of this rollout's version over the analysis window. */
  shadow: ReadonlyMap<string, Omit<ShadowTraffic, 'devices'>>;
  /** Drift reports on this rollout's version over the analysis window (absent: no drift reporting wired). */
  drift?: { reporting: number; drifted: number } | undefined;
}

export type PlannedCommand =
  | { kind: 'install'; deviceId: string; id: string; mode: 'activate' | 'shadow'; shadowPercent: number }
  | { kind: 'activate'; deviceId: string; id: string }
  | { kind: 'rollback'; deviceId: string; id: string; reason: Reason };

export interface ReconcileResult {
  rollout: RolloutRecord;
  commands: PlannedCommand[];
  /** When to reconcile again even if nothing is reported; null: only on reports or actions. */
  nextCheckAt: Date | null;
}

/** Re-send a command that got no report for this long (devices ignore a command id they have seen). */
export const RESEND_AFTER_MS = 30_000;
const MAX_EVENTS = 200;
const MAX_MEASUREMENTS = 20;

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
export function currentPercent(rollout: RolloutRecord): number {
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

export type OperatorAction =
  | { type: 'pause'; reason?: string | undefined }
  | { type: 'resume' }
  | { type: 'abort'; reason?: string | undefined }
  | { type: 'rollback'; reason?: string | undefined }
  | { type: 'promote' };

export class ActionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * An operator's action. Throws ActionError when it does not apply in the rollout's phase.
 * - pause: progressing → paused. resume: paused → progressing (past an inconclusive gate or a pause step).
 * - abort: stop and roll back every device that got the new version. rollback: the same, also after success.
 * - promote: skip the remaining steps and gates (every target gets the new version now).
 */
export function applyAction(
  rollout: RolloutRecord,
  action: OperatorAction,
  actor: string,
  now: Date,
): RolloutRecord {
  const at = now.toISOString();
  const s = rollout.status;
  const refuse = (why: string) => {
    throw new ActionError('invalid_phase', `cannot ${action.type} rollout ${rollout.id}: ${why}`);
  };
  switch (action.type) {
    case 'pause':
      if (s.phase !== 'progressing') refuse(`it is ${s.phase}`);
      return withStatus(
        rollout,
        now,
        {
          phase: 'paused',
          pause: {
            kind: 'operator',
            reason: { code: 'paused', message: action.reason ?? `paused by ${actor}` },
            at,
            by: actor,
          },
        },
        'paused',
        `by ${actor}${action.reason ? `: ${action.reason}` : ''}`,
      );
    case 'resume': {
      if (s.phase !== 'paused' || !s.pause) refuse(`it is ${s.phase}`);
      const pause = s.pause!;
      // Past an inconclusive gate or a pause step the rollout moves on; an operator pause continues the step.
      const moveOn = pause.kind !== 'operator';
      return withStatus(
        rollout,
        now,
        moveOn
          ? { phase: 'progressing', pause: null, step: s.step + 1, stepStartedAt: at, analysis: null }
          : { phase: 'progressing', pause: null },
        'resumed',
        `by ${actor}${moveOn ? ` past step ${s.step + 1} (${pause.reason.message})` : ''}`,
      );
    }
    case 'abort':
    case 'rollback': {
      if (action.type === 'abort' && isFinal(s.phase)) refuse(`it is already ${s.phase}`);
      if (action.type === 'rollback' && (s.phase === 'rolled_back' || s.phase === 'aborted'))
        refuse(`it is already ${s.phase}`);
      const reason: Reason = {
        code: action.type === 'abort' ? 'operator_abort' : 'operator_rollback',
        message: action.reason ?? `${action.type === 'abort' ? 'aborted' : 'rolled back'} by ${actor}`,
      };
      return abortWith(rollout, reason, actor, now);
    }
    case 'promote': {
      if (s.phase !== 'progressing' && s.phase !== 'paused') refuse(`it is ${s.phase}`);
      const last = rollout.spec.steps.findLastIndex(
        (step) => 'setPercent' in step && step.setPercent === 100,
      );
      return withStatus(
        rollout,
        now,
        { phase: 'progressing', pause: null, step: last, stepStartedAt: at, analysis: null },
        'promoted',
        `by ${actor}: remaining steps and gates skipped`,
      );
    }
  }
}

function abortWith(rollout: RolloutRecord, reason: Reason, by: string, now: Date): RolloutRecord {
  return withStatus(
    rollout,
    now,
    { phase: 'aborted', pause: null, abort: { reason, by, at: now.toISOString() } },
    'aborted',
    `${reason.code}: ${reason.message}`,
  );
}

function withStatus(
  rollout: RolloutRecord,
  now: Date,
  patch: Partial<RolloutStatus>,
  event?: string,
  message?: string,
): RolloutRecord {
  const at = now.toISOString();
  const events = event
    ? [...rollout.status.events, { at, type: event, message: message ?? '' }].slice(-MAX_EVENTS)
    : rollout.status.events;
  return { ...rollout, status: { ...rollout.status, ...patch, events, updatedAt: at } };
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

interface StepOutcome {
  rollout: RolloutRecord;
  done: 'advance' | 'wait';
  wakeAt: number | null;
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

function measure(
  rollout: RolloutRecord,
  gates: Gate[],
  windowS: number,
  intervalS: number,
  context: 'analysis' | 'shadow',
  view: FleetView,
  now: Date,
): StepOutcome {
  const at = now.toISOString();
  let r = rollout;
  let analysis = r.status.analysis;
  if (!analysis || analysis.step !== r.status.step) {
    analysis = { step: r.status.step, startedAt: at, lastAt: null, failures: {}, measurements: [] };
    r = withStatus(
      r,
      now,
      { analysis },
      context === 'shadow' ? 'shadow' : 'analysis',
      `measuring ${gates.map((g) => g.metric).join(', ')} for ${windowS} s`,
    );
  }
  const started = Date.parse(analysis.startedAt);
  const end = started + windowS * 1000;
  const due =
    analysis.lastAt === null ? started + intervalS * 1000 : Date.parse(analysis.lastAt) + intervalS * 1000;
  const nowMs = now.getTime();
  if (nowMs < Math.min(due, end)) return { rollout: r, done: 'wait', wakeAt: Math.min(due, end) };

  const inputs = gateInputs(r, view);
  const results = gates.map((g) => evaluateGate(g, inputs, context));
  const verdict = combine(results.map((x) => x.verdict));
  const failures = { ...analysis.failures };
  for (const res of results)
    if (res.verdict === 'failed') failures[res.metric] = (failures[res.metric] ?? 0) + 1;
  const measurement: Measurement = { at, verdict, gates: results };
  analysis = {
    ...analysis,
    lastAt: at,
    failures,
    measurements: [...analysis.measurements, measurement].slice(-MAX_MEASUREMENTS),
  };
  const measured = [
    ...(r.status.measured ?? []).filter((m) => m.step !== r.status.step),
    { step: r.status.step, ...measurement },
  ];
  r = withStatus(r, now, { analysis, measured });

  const tripped = gates.find((g) => (failures[g.metric] ?? 0) > g.failureLimit);
  if (tripped) {
    const res = results.find((x) => x.metric === tripped.metric)!;
    return {
      rollout: abortWith(
        r,
        { code: 'gate_failed', message: `${tripped.metric}: ${res.detail}` },
        'gate',
        now,
      ),
      done: 'wait',
      wakeAt: null,
    };
  }
  if (nowMs < end) return { rollout: r, done: 'wait', wakeAt: Math.min(nowMs + intervalS * 1000, end) };
  if (verdict === 'passed') return { rollout: r, done: 'advance', wakeAt: null };
  const why = results
    .filter((x) => x.verdict !== 'passed')
    .map((x) => `${x.metric}: ${x.detail}`)
    .join('; ');
  if (verdict === 'failed') {
    return {
      rollout: abortWith(r, { code: 'gate_failed', message: why }, 'gate', now),
      done: 'wait',
      wakeAt: null,
    };
  }
  return {
    rollout: withStatus(
      r,
      now,
      {
        phase: 'paused',
        pause: { kind: 'inconclusive', reason: { code: 'gate_inconclusive', message: why }, at, by: 'gate' },
      },
      'paused',
      `inconclusive: ${why}`,
    ),
    done: 'wait',
    wakeAt: null,
  };
}

/**
 * Whether reconciling now may take a gate measurement (so the fleet view is worth building): the rollout
 * is progressing in an analysis or shadow step whose measurement is due. Mirrors `measure`'s timing.
 */
export function measurementDue(r: RolloutRecord, now: Date): boolean {
  if (r.status.phase !== 'progressing') return false;
  const step = r.spec.steps[r.status.step];
  if (!step || !('analysis' in step || 'shadow' in step)) return false;
  const a = r.status.analysis;
  if (!a || a.step !== r.status.step) return false; // a new analysis measures only after its first interval
  const { windowS, intervalS } =
    'analysis' in step ? step.analysis : { windowS: step.shadow.durationS, intervalS: step.shadow.intervalS };
  const started = Date.parse(a.startedAt);
  const due = a.lastAt === null ? started + intervalS * 1000 : Date.parse(a.lastAt) + intervalS * 1000;
  return now.getTime() >= Math.min(due, started + windowS * 1000);
}

/** Canary: cohort devices active on the new version. Control: targets not yet in any cohort. */
export function gateInputs(r: RolloutRecord, view: FleetView): GateInputs {
  const percent = currentPercent(r);
  const size = cohortSize(percent, r.devices.length);
  const cohort = r.devices.filter((d) => d.rank < size);
  const finished = cohort.filter((d) => d.state === 'active' || d.state === 'failed');
  const canary = emptyTraffic();
  const control = emptyTraffic();
  const shadow: ShadowTraffic = emptyShadowTraffic();
  for (const d of r.devices) {
    const traffic = view.traffic.get(d.deviceId);
    if (d.state === 'active' && traffic) {
      const mine = traffic.get(r.model.version);
      if (mine && mine.requests > 0) {
        addTraffic(canary, mine);
        canary.devices++;
      }
    } else if (d.state === 'waiting' && traffic) {
      let counted = false;
      for (const [version, t] of traffic) {
        if (version === r.model.version || t.requests === 0) continue;
        addTraffic(control, t);
        counted = true;
      }
      if (counted) control.devices++;
    }
    const s = view.shadow.get(d.deviceId);
    if (d.state === 'shadowing' && s && s.compared + s.dropped + s.errors > 0) {
      shadow.devices++;
      shadow.compared += s.compared;
      shadow.agreed += s.agreed;
      shadow.dropped += s.dropped;
      shadow.errors += s.errors;
      for (let i = 0; i < s.activeLatencyBuckets.length && i < shadow.activeLatencyBuckets.length; i++) {
        shadow.activeLatencyBuckets[i]! += s.activeLatencyBuckets[i]!;
        shadow.candidateLatencyBuckets[i]! += s.candidateLatencyBuckets[i] ?? 0;
      }
    }
  }
  return {
    activation: { finished: finished.length, failed: finished.filter((d) => d.state === 'failed').length },
    canary,
    control,
    shadow: r.devices.some((d) => d.mode === 'shadow') ? shadow : null,
    drift: view.drift ?? null,
  };
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
