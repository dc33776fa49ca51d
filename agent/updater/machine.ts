/**
 * The update state machine, pure: `step(record, event) → { record, effects }`. No I/O, no clock reads,
 * no ORT: the driver (driver.ts) persists the returned record FIRST and only then runs its effects; each
 * effect ends in the next event. Tested table-first, with crash columns, in test/unit/agent/updater.
 *
 * An install record:
 *   received ──manifest_ok──▶ downloading ──downloaded──▶ verifying ──staged──▶ staged ──continue──▶ loading
 *      │                                                                                               │
 *      └─already_installed──▶ active ◀──activated── activating ◀──────────────loaded──────────────────┘
 *   any non-terminal state ──failed(reason)──▶ failed
 *
 * Shadow mode (`mode: 'shadow'`): `loaded` leads to `shadowing` instead of `activating`: the candidate runs
 * beside the active model on mirrored traffic until the fleet sends `activate` (shadowing ──activate_requested──▶
 * activating ──activated──▶ active) or `rollback`. Any non-terminal state ──rollback_requested──▶ rolled_back
 * (the candidate is discarded; the active model never changed).
 *
 * A rollback record (`kind: 'rollback'`, one per rollback command, keyed by the command's id) is persisted in
 * `received` before anything is touched; its one piece of work, `leave`, discards the candidate or switches the
 * active model back to the other slot, and ends it:  received ──left──▶ rolled_back,  received ──failed──▶ failed.
 *
 * A state names the work in progress (or, for `staged`, the milestone just reached). `recover` re-enters
 * the persisted state after a restart and is counted: more than `maxReentries` in one state fails the record
 * with `crash_loop`, so a model that crashes the process cannot keep doing so forever. `shadowing` is counted
 * like any state (re-loading the candidate can crash the process too) but its count is reset once the shadow
 * session is running again (`shadow_started`): restarts while merely waiting for the fleet never add up.
 */
import type { ModelRef, Reason, UpdateState } from '../../shared/protocol/messages.js';
import type { Slot } from '../runtime/slots.js';

export interface UpdateRecord {
  commandId: string;
  rolloutId: string;
  /** The signed manifest exactly as received (verified again from this text after a restart); '' for rollbacks. */
  manifestText: string;
  artifactUrl: string;
  /** From the manifest once verified; before that, a best-effort read for reporting. Rollback: the model left. */
  model: ModelRef;
  sha256: string | null;
  /** The inactive slot the artifact was staged into; activation points there. */
  slot: Slot | null;
  state: UpdateState;
  /** Why it failed or was rolled back (a rollback record holds the command's reason until it ends). */
  reason: Reason | null;
  executionProvider: string | null;
  /** Re-entries per state after restarts. */
  reentries: Partial<Record<UpdateState, number>>;
  /** The agent stopped on purpose between two steps (SIGTERM): the next recovery is not a crash. */
  stoppedCleanly?: boolean;
  /** Order of arrival, for the queue. */
  seq: number;
  /** What the record drives (absent in records from older agents: install). */
  kind?: 'install' | 'rollback';
  /** `shadow`: wait in `shadowing` after the self-test (absent in records from older agents: activate). */
  mode?: 'activate' | 'shadow';
  /** Share of live requests mirrored to a shadowing candidate, percent. */
  shadowPercent?: number;
}

export type UpdateEvent =
  | { type: 'start' }
  | { type: 'recover'; maxReentries: number }
  | { type: 'manifest_ok'; model: ModelRef; sha256: string }
  | { type: 'already_installed'; provider: string | null }
  | { type: 'downloaded' }
  | { type: 'staged'; slot: Slot }
  | { type: 'continue' }
  | { type: 'loaded'; provider: string }
  | { type: 'shadow_started' }
  | { type: 'activated' }
  | { type: 'activate_requested' }
  | { type: 'rollback_requested'; reason: Reason }
  | { type: 'left' }
  | { type: 'failed'; reason: Reason };

export type UpdateEffect =
  | { kind: 'verify_manifest' }
  | { kind: 'download' }
  | { kind: 'verify_and_stage' }
  | { kind: 'load_and_selftest' }
  | { kind: 'activate' }
  | { kind: 'start_shadow' }
  | { kind: 'leave' }
  | { kind: 'report' }
  | { kind: 'discard' }
  | { kind: 'continue' };

export interface StepResult {
  record: UpdateRecord;
  effects: UpdateEffect[];
}

export const TERMINAL: readonly UpdateState[] = ['active', 'failed', 'rolled_back'];

type WorkingState = Exclude<UpdateState, 'active' | 'failed' | 'rolled_back'>;

/** What to do when (re-)entering each working state of an install: the effect that continues its work. */
export const WORK_OF: Record<WorkingState, UpdateEffect> = {
  received: { kind: 'verify_manifest' },
  downloading: { kind: 'download' },
  verifying: { kind: 'verify_and_stage' },
  staged: { kind: 'continue' },
  loading: { kind: 'load_and_selftest' },
  activating: { kind: 'activate' },
  shadowing: { kind: 'start_shadow' },
};

/** Allowed progress of an install: event type → [from state, to state]. */
const TRANSITIONS: Record<string, [UpdateState, UpdateState]> = {
  manifest_ok: ['received', 'downloading'],
  already_installed: ['received', 'active'],
  downloaded: ['downloading', 'verifying'],
  staged: ['verifying', 'staged'],
  continue: ['staged', 'loading'],
  loaded: ['loading', 'activating'],
  activated: ['activating', 'active'],
};

export function isTerminal(state: UpdateState): boolean {
  return TERMINAL.includes(state);
}

export function isRollback(record: UpdateRecord): boolean {
  return record.kind === 'rollback';
}

export function step(record: UpdateRecord, event: UpdateEvent): StepResult {
  if (isTerminal(record.state)) return { record, effects: [] };
  if (event.type === 'recover') return recover(record, event.maxReentries);
  if (isRollback(record)) return stepRollback(record, event);
  const state = record.state as WorkingState;

  switch (event.type) {
    case 'start':
      if (state !== 'received') return { record, effects: [] };
      return { record, effects: [{ kind: 'report' }, WORK_OF.received] };

    case 'failed':
      return fail(record, event.reason);

    case 'rollback_requested':
      return {
        record: { ...record, state: 'rolled_back', reason: event.reason },
        effects: [{ kind: 'report' }, { kind: 'discard' }],
      };

    case 'activate_requested':
      // Only a shadowing candidate is switched by command; anything else ignores it (it activates itself).
      if (state !== 'shadowing') return { record, effects: [] };
      return {
        record: { ...record, state: 'activating' },
        effects: [{ kind: 'report' }, WORK_OF.activating],
      };

    case 'shadow_started': {
      if (state !== 'shadowing') return unexpected(record, event);
      // The candidate runs again: restarts from here on are waiting, not a crash loop in progress.
      if (!record.reentries.shadowing) return { record, effects: [] };
      return { record: { ...record, reentries: { ...record.reentries, shadowing: 0 } }, effects: [] };
    }

    default: {
      const transition = TRANSITIONS[event.type];
      if (!transition || transition[0] !== state) return unexpected(record, event);
      const to: UpdateState =
        event.type === 'loaded' && record.mode === 'shadow' ? 'shadowing' : transition[1];
      let next: UpdateRecord = { ...record, state: to };
      if (event.type === 'manifest_ok') next = { ...next, model: event.model, sha256: event.sha256 };
      if (event.type === 'staged') next = { ...next, slot: event.slot };
      if (event.type === 'loaded') next = { ...next, executionProvider: event.provider };
      if (event.type === 'already_installed') next = { ...next, executionProvider: event.provider };
      if (to === 'active') return { record: next, effects: [{ kind: 'report' }, { kind: 'discard' }] };
      // `staged` is a persisted milestone: its work is `continue`, which the driver turns into the event.
      return { record: next, effects: [{ kind: 'report' }, WORK_OF[to as WorkingState]] };
    }
  }
}

/** A rollback record: only `received` is a working state; its work is `leave`. */
function stepRollback(record: UpdateRecord, event: UpdateEvent): StepResult {
  switch (event.type) {
    case 'start':
      // Not reported on its own: the fleet hears the outcome (rolled_back or failed) under this command's id.
      return { record, effects: [{ kind: 'leave' }] };
    case 'left':
      return { record: { ...record, state: 'rolled_back' }, effects: [{ kind: 'report' }] };
    case 'failed':
      // Nothing of this record's own to discard: the install it acted on cleans up after itself.
      return { record: { ...record, state: 'failed', reason: event.reason }, effects: [{ kind: 'report' }] };
    default:
      return unexpected(record, event);
  }
}

function recover(record: UpdateRecord, maxReentries: number): StepResult {
  const state = record.state as WorkingState;
  // A clean stop resumes without counting: only crashes may end in crash_loop.
  const count = (record.reentries[state] ?? 0) + (record.stoppedCleanly ? 0 : 1);
  const next = { ...record, stoppedCleanly: false, reentries: { ...record.reentries, [state]: count } };
  if (count > maxReentries) {
    return failWith(next, {
      code: 'crash_loop',
      message: `the agent restarted ${count} times while ${state}; giving up on this ${isRollback(record) ? 'rollback' : 'update'}`,
    });
  }
  if (isRollback(record)) return { record: next, effects: [{ kind: 'leave' }] };
  // `staged` has no work of its own: continue straight into loading.
  if (state === 'staged') return step(next, { type: 'continue' });
  return { record: next, effects: [WORK_OF[state]] };
}

function unexpected(record: UpdateRecord, event: UpdateEvent): StepResult {
  return failWith(record, {
    code: 'internal_error',
    message: `update state machine got '${event.type}' while ${record.state}${isRollback(record) ? ' (rollback)' : ''}`,
  });
}

function failWith(record: UpdateRecord, reason: Reason): StepResult {
  return isRollback(record) ? stepRollback(record, { type: 'failed', reason }) : fail(record, reason);
}

function fail(record: UpdateRecord, reason: Reason): StepResult {
  return {
    record: { ...record, state: 'failed', reason },
    effects: [{ kind: 'report' }, { kind: 'discard' }],
  };
}
