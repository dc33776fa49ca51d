/**
 * The update state machine, pure: `step(record, event) → { record, effects }`. No I/O, no clock reads,
 * no ORT: the driver (driver.ts) persists the returned record FIRST and only then runs its effects; each
 * effect ends in the next event. Tested table-first, with crash columns, in test/unit/agent/updater.
 *
 *   received ──manifest_ok──▶ downloading ──downloaded──▶ verifying ──staged──▶ staged ──continue──▶ loading
 *      │                                                                                               │
 *      └─already_installed──▶ active ◀──activated── activating ◀──────────────loaded──────────────────┘
 *   any non-terminal state ──failed(reason)──▶ failed
 *
 * Shadow mode (`mode: 'shadow'`): `loaded` leads to `shadowing` instead of `activating`: the candidate runs
 * beside the active model on mirrored traffic until the fleet sends `activate` (→ activating → active) or
 * `rollback` (→ rolled_back, discarded). Any non-terminal state ──rollback_requested──▶ rolled_back.
 *
 * A state names the work in progress (or, for `staged`, the milestone just reached). `recover` re-enters
 * the persisted state after a restart and is counted: more than `maxReentries` in one state fails the
 * update with `crash_loop`, so a model that crashes the process cannot keep doing so forever.
 */
import type { ModelRef, Reason, UpdateState } from '../../shared/protocol/messages.js';
import type { Slot } from '../runtime/slots.js';

export interface UpdateRecord {
  commandId: string;
  rolloutId: string;
  /** The signed manifest exactly as received (verified again from this text after a restart). */
  manifestText: string;
  artifactUrl: string;
  /** From the manifest once verified; before that, a best-effort read for reporting. */
  model: ModelRef;
  sha256: string | null;
  /** The inactive slot the artifact was staged into; activation points there. */
  slot: Slot | null;
  state: UpdateState;
  reason: Reason | null;
  executionProvider: string | null;
  /** Re-entries per state after restarts. */
  reentries: Partial<Record<UpdateState, number>>;
  /** The agent stopped on purpose between two steps (SIGTERM): the next recovery is not a crash. */
  stoppedCleanly?: boolean;
  /** Order of arrival, for the queue. */
  seq: number;
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
  | { type: 'activated' }
  | { type: 'activate_requested' }
  | { type: 'rollback_requested'; reason: Reason }
  | { type: 'failed'; reason: Reason };

export type UpdateEffect =
  | { kind: 'verify_manifest' }
  | { kind: 'download' }
  | { kind: 'verify_and_stage' }
  | { kind: 'load_and_selftest' }
  | { kind: 'activate' }
  | { kind: 'start_shadow' }
  | { kind: 'report' }
  | { kind: 'discard' }
  | { kind: 'continue' };

export interface StepResult {
  record: UpdateRecord;
  effects: UpdateEffect[];
}

export const TERMINAL: readonly UpdateState[] = ['active', 'failed', 'rolled_back'];

/** What to do when (re-)entering each working state: the effect that continues its work. */
export const WORK_OF: Record<Exclude<UpdateState, 'active' | 'failed' | 'rolled_back'>, UpdateEffect> = {
  received: { kind: 'verify_manifest' },
  downloading: { kind: 'download' },
  verifying: { kind: 'verify_and_stage' },
  staged: { kind: 'continue' },
  loading: { kind: 'load_and_selftest' },
  activating: { kind: 'activate' },
  shadowing: { kind: 'start_shadow' },
};

/** Allowed progress: event type → [from state, to state]. */
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

export function step(record: UpdateRecord, event: UpdateEvent): StepResult {
  if (isTerminal(record.state)) return { record, effects: [] };
  const state = record.state as keyof typeof WORK_OF;

  switch (event.type) {
    case 'start':
      if (state !== 'received') return { record, effects: [] };
      return { record, effects: [{ kind: 'report' }, WORK_OF.received] };

    case 'recover': {
      // A clean stop resumes without counting: only crashes may end in crash_loop.
      // Waiting in `shadowing` is not work a crash interrupts (the record is idle between commands).
      const count = (record.reentries[state] ?? 0) + (record.stoppedCleanly || state === 'shadowing' ? 0 : 1);
      const next = { ...record, stoppedCleanly: false, reentries: { ...record.reentries, [state]: count } };
      if (count > event.maxReentries) {
        return fail(next, {
          code: 'crash_loop',
          message: `the agent restarted ${count} times while ${state}; giving up on this update`,
        });
      }
      // `staged` has no work of its own: continue straight into loading.
      if (state === 'staged') return step(next, { type: 'continue' });
      return { record: next, effects: [WORK_OF[state]] };
    }

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

    default: {
      const transition = TRANSITIONS[event.type];
      if (!transition || transition[0] !== state) {
        return fail(record, {
          code: 'internal_error',
          message: `update state machine got '${event.type}' while ${state}`,
        });
      }
      const to: UpdateState =
        event.type === 'loaded' && record.mode === 'shadow' ? 'shadowing' : transition[1];
      let next: UpdateRecord = { ...record, state: to };
      if (event.type === 'manifest_ok') next = { ...next, model: event.model, sha256: event.sha256 };
      if (event.type === 'staged') next = { ...next, slot: event.slot };
      if (event.type === 'loaded') next = { ...next, executionProvider: event.provider };
      if (event.type === 'already_installed') next = { ...next, executionProvider: event.provider };
      if (to === 'active') return { record: next, effects: [{ kind: 'report' }, { kind: 'discard' }] };
      const work = WORK_OF[to as keyof typeof WORK_OF];
      // `staged` is a persisted milestone: its work is `continue`, which the driver turns into the event.
      return { record: next, effects: [{ kind: 'report' }, work] };
    }
  }
}

function fail(record: UpdateRecord, reason: Reason): StepResult {
  return {
    record: { ...record, state: 'failed', reason },
    effects: [{ kind: 'report' }, { kind: 'discard' }],
  };
}
