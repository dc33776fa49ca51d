/**
 * Which operator action each rollout phase allows, as data: the one table `applyAction` enforces and every
 * edge renders from (the API serves `allowedActions(phase)` with each rollout; the CLI and the console show
 * exactly those). A refused action carries the reason, the same words the 409 says.
 */
import type { Reason } from '../../shared/protocol/messages.js';
import { abortWith, type RolloutHead, type RolloutPhase, withStatus } from './record.js';

export const ROLLOUT_ACTIONS = ['pause', 'resume', 'abort', 'rollback', 'promote'] as const;
export type RolloutActionName = (typeof ROLLOUT_ACTIONS)[number];

/** The least role that may take each action (promote overrides the gates, so admins only). */
export const ACTION_ROLE: Record<RolloutActionName, 'operator' | 'admin'> = {
  pause: 'operator',
  resume: 'operator',
  abort: 'operator',
  rollback: 'operator',
  promote: 'admin',
};

/** What each action does, in the words the CLI and the console show before an operator confirms it. */
export const ACTION_EFFECT: Record<RolloutActionName, string> = {
  pause: 'Stops advancing: no new device is sent the version; devices keep what they run until resumed.',
  resume: 'Continues the rollout (past a pause step or an inconclusive gate, to the next step).',
  abort:
    'Stops the rollout for good and rolls back every device that got the new version to the model it ran before.',
  rollback:
    'Rolls back every device that got the new version to the model it ran before, also after the rollout succeeded.',
  promote: 'Skips the remaining steps and gates: every target gets the new version now.',
};

type Rule = true | string;

/** phase × action → allowed (true), or why not. */
const TABLE: Record<RolloutPhase, Record<RolloutActionName, Rule>> = {
  progressing: {
    pause: true,
    resume: 'it is not paused',
    abort: true,
    rollback: true,
    promote: true,
  },
  paused: {
    pause: 'it is paused',
    resume: true,
    abort: true,
    rollback: true,
    promote: true,
  },
  succeeded: {
    pause: 'it is succeeded',
    resume: 'it is succeeded',
    abort: 'it is already succeeded; roll it back instead',
    rollback: true,
    promote: 'it is succeeded',
  },
  failed: {
    pause: 'it is failed',
    resume: 'it is failed',
    abort: 'it is already failed; roll it back instead',
    rollback: true,
    promote: 'it is failed',
  },
  aborted: {
    pause: 'it is aborted',
    resume: 'it is aborted',
    abort: 'it is already aborted: its devices are rolling back',
    rollback: 'it is already aborted: its devices are rolling back',
    promote: 'it is aborted',
  },
  rolled_back: {
    pause: 'it is rolled_back',
    resume: 'it is rolled_back',
    abort: 'it is already rolled_back',
    rollback: 'it is already rolled_back',
    promote: 'it is rolled_back',
  },
};

export interface ActionRule {
  action: RolloutActionName;
  allowed: boolean;
  /** The least role that may take it. */
  role: 'operator' | 'admin';
  /** Why not, when it is not allowed in this phase. */
  reason: string | null;
  /** What it does (`ACTION_EFFECT`): the words a client shows before an operator confirms it. */
  effect: string;
}

/** Every action with whether the phase allows it (and why not): served with each rollout. */
export function allowedActions(phase: RolloutPhase): ActionRule[] {
  return ROLLOUT_ACTIONS.map((action) => {
    const rule = TABLE[phase][action];
    return {
      action,
      allowed: rule === true,
      role: ACTION_ROLE[action],
      reason: rule === true ? null : rule,
      effect: ACTION_EFFECT[action],
    };
  });
}

/** Why `action` is refused in `phase`, or null when it is allowed. */
export function refusal(phase: RolloutPhase, action: RolloutActionName): string | null {
  const rule = TABLE[phase][action];
  return rule === true ? null : rule;
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
 * An operator's action. Throws ActionError when the table above refuses it in the rollout's phase.
 * - pause: progressing → paused. resume: paused → progressing (past an inconclusive gate or a pause step).
 * - abort: stop and roll back every device that got the new version. rollback: the same, also after success.
 * - promote: skip the remaining steps and gates (every target gets the new version now).
 */
export function applyAction<R extends RolloutHead>(
  rollout: R,
  action: OperatorAction,
  actor: string,
  now: Date,
): R {
  const at = now.toISOString();
  const s = rollout.status;
  const why = refusal(s.phase, action.type);
  if (why !== null)
    throw new ActionError('invalid_phase', `cannot ${action.type} rollout ${rollout.id}: ${why}`);
  switch (action.type) {
    case 'pause':
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
      // A paused record always says why (actions and reconcile set both together).
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
      const reason: Reason = {
        code: action.type === 'abort' ? 'operator_abort' : 'operator_rollback',
        message: action.reason ?? `${action.type === 'abort' ? 'aborted' : 'rolled back'} by ${actor}`,
      };
      return abortWith(rollout, reason, actor, now);
    }
    case 'promote': {
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
