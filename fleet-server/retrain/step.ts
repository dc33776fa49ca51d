/**
 * The retrain workflow as a transition table, pure: `step(record, event, at)` returns the next record and the
 * effects to carry out, as values; `loop.ts` persists the record before it carries out any of them.
 *
 *   training ──run settled, won──▶ setting_candidate ──auto──▶ creating_rollout ──created──▶ rolling_out
 *      │  └─lost──▶ rejected                  └─approve──▶ awaiting_approval ──approved──┘        │
 *      └─run failed──▶ failed                                                      completed | rollout_failed
 *
 * Ids first: a retrain is created with its training run's id, and `creating_rollout` is entered with the
 * canary's id; the effects start the run and create the rollout under those ids, and both calls return what
 * already exists under them. So a crash after any persisted step is recovered by carrying out that status's
 * effects again (`restarted`, one row per status in RESTART): nothing is made twice, and a canary never runs
 * without the record that names it. Each status with work to redo counts its restarts; past MAX_RESTARTS in
 * a row the retrain fails with the reason, so a crash loop ends.
 *
 * An event a status has no row for changes nothing (a late report of a run for a retrain already failed,
 * say); the table test walks every status × event.
 */
import type { RolloutPhase } from '../rollouts/record.js';
import type { RunTrigger, TrainRequest } from '../training/runs.js';
import { evaluate } from './evaluate.js';
import type { RetrainEvent, RetrainPolicy, RetrainRecord, RetrainStatus } from './record.js';

/** A restart that finds a retrain in the same working status this many times in a row fails it. */
export const MAX_RESTARTS = 3;

export type RunResult = Parameters<typeof evaluate>[0];
export interface ErrorInfo {
  code: string;
  message: string;
}

/** What happens to a retrain: results of its effects, an operator's approval, its canary's end, a restart. */
export type StepEvent =
  | { type: 'run_started'; snapshot: string }
  | { type: 'run_settled'; status: string; result: RunResult | null; error: ErrorInfo | null }
  /** `rollout`: the canary's fresh id, when the policy starts one at once. */
  | { type: 'candidate_set'; rollout: string | null }
  | { type: 'approved'; actor: string; rollout: string }
  | { type: 'rollout_created' }
  | { type: 'rollout_refused'; error: ErrorInfo }
  | { type: 'rollout_ended'; phase: RolloutPhase; reason: string | null }
  | { type: 'effect_failed'; error: ErrorInfo }
  | { type: 'restarted' };
export type StepEventType = StepEvent['type'];
export const STEP_EVENT_TYPES: readonly StepEventType[] = [
  'run_started',
  'run_settled',
  'candidate_set',
  'approved',
  'rollout_created',
  'rollout_refused',
  'rollout_ended',
  'effect_failed',
  'restarted',
];

/** What the driver does for a retrain, as values. Each is safe to carry out again after a crash. */
export type Effect =
  /** Start the training run under `run` (returns the run already under it, if any): `run_started`. */
  | {
      kind: 'start_run';
      run: string;
      task: string;
      request: TrainRequest;
      actor: string;
      trigger: RunTrigger;
    }
  /** Wait for the run to finish: `run_settled`. */
  | { kind: 'await_run'; run: string }
  /**
   * Point the model's `candidate` alias at the winner (a no-op when it already does): `candidate_set`, with a
   * fresh rollout id when `canary` (the policy starts the canary at once).
   */
  | { kind: 'set_candidate'; model: string; version: number; actor: string; canary: boolean }
  /** Create the canary under `id` (returns the rollout already under it, if any): `rollout_created`. */
  | {
      kind: 'create_rollout';
      id: string;
      model: { name: string; version: number };
      policy: RetrainPolicy;
      actor: string;
    }
  /** Append a history entry to the audit trail (and the log). */
  | { kind: 'audit'; step: RetrainEvent['step'] | 'triggered'; message: string };

export interface Step {
  record: RetrainRecord;
  effects: Effect[];
}

type Transition<E extends StepEventType> = (
  record: RetrainRecord,
  event: Extract<StepEvent, { type: E }>,
  at: string,
) => Step;
type Row = { [E in Exclude<StepEventType, 'restarted'>]?: Transition<E> };

/** The next record and effects; the record itself (unchanged, no effects) when the event does not apply. */
export function step(record: RetrainRecord, event: StepEvent, at: string): Step {
  if (event.type === 'restarted') return restarted(record, at);
  const transition = TABLE[record.status][event.type] as Transition<typeof event.type> | undefined;
  return transition ? transition(record, event as never, at) : { record, effects: [] };
}

/** The effects that start a retrain just created (`newRetrain`). */
export function begun(record: RetrainRecord): Effect[] {
  const { kind, actor, reason } = record.trigger;
  return [
    { kind: 'audit', step: 'triggered', message: `${kind} trigger by ${actor}: ${reason}` },
    startRun(record),
  ];
}

const failWith =
  (prefix = ''): Transition<'effect_failed'> =>
  (r, e, at) =>
    fail(r, e.error, at, prefix);

const TABLE: { [S in RetrainStatus]: Row } = {
  training: {
    run_started: (r, e, at) =>
      r.snapshot !== null
        ? { record: r, effects: [awaitRun(r)] } // started again after a restart: the run it already had
        : advance(
            r,
            { snapshot: e.snapshot },
            [['training', `training run ${r.run} on snapshot ${e.snapshot}`]],
            at,
            [awaitRun(r)],
          ),
    run_settled: (r, e, at) => {
      if (e.status !== 'succeeded' || !e.result) {
        const error = e.error ?? { code: 'training_failed', message: `run ended ${e.status}` };
        return fail(r, error, at, 'training failed: ');
      }
      const version = e.result.version;
      const evaluation = evaluate(e.result, r.policy);
      const judged: [RetrainEvent['step'], string][] = [
        ['trained', `${r.model}@${version} trained`],
        ['evaluated', evaluation.detail],
      ];
      if (!evaluation.won)
        return advance(
          r,
          { version, evaluation, status: 'rejected' },
          [...judged, ['rejected', `${r.model}@${version} kept out of production: ${evaluation.detail}`]],
          at,
        );
      return advance(r, { version, evaluation, status: 'setting_candidate' }, judged, at, [
        setCandidate({ ...r, version }),
      ]);
    },
    effect_failed: failWith(),
  },
  setting_candidate: {
    candidate_set: (r, e, at) =>
      r.policy.mode === 'auto' && e.rollout !== null
        ? advance(r, { status: 'creating_rollout', rollout: e.rollout }, [], at, [
            createRollout({ ...r, rollout: e.rollout }),
          ])
        : advance(
            r,
            { status: 'awaiting_approval' },
            [
              [
                'awaiting_approval',
                `${r.model}@${r.version} is the candidate; \`edgefleet retrain approve ${r.id}\` starts its canary`,
              ],
            ],
            at,
          ),
    effect_failed: failWith(),
  },
  awaiting_approval: {
    approved: (r, e, at) =>
      advance(
        r,
        { status: 'creating_rollout', rollout: e.rollout, approvedBy: e.actor },
        [['approved', `approved by ${e.actor}`]],
        at,
        [createRollout({ ...r, rollout: e.rollout, approvedBy: e.actor })],
      ),
  },
  creating_rollout: {
    rollout_created: (r, _e, at) =>
      advance(
        r,
        { status: 'rolling_out' },
        [['rollout', `canary rollout ${r.rollout} of ${r.model}@${r.version} started`]],
        at,
      ),
    // An operator's approval the fleet refused (another rollout of the model under way, say) leaves the
    // candidate waiting, to be approved again; the policy's own canary has no one to wait for.
    rollout_refused: (r, e, at) =>
      r.approvedBy !== null
        ? advance(
            r,
            { status: 'awaiting_approval', rollout: null, approvedBy: null },
            [['awaiting_approval', `canary not started: ${e.error.message}; approve again to retry`]],
            at,
          )
        : fail(r, e.error, at),
    effect_failed: failWith(),
  },
  rolling_out: {
    rollout_ended: (r, e, at) =>
      e.phase === 'succeeded'
        ? advance(
            r,
            { status: 'completed' },
            [
              [
                'completed',
                `rollout ${r.rollout} succeeded: ${r.model}@${r.version} runs on every target and is production`,
              ],
            ],
            at,
          )
        : advance(
            r,
            { status: 'rollout_failed' },
            [['rollout_failed', `rollout ${r.rollout} ended ${e.phase}: ${e.reason ?? e.phase}`]],
            at,
          ),
  },
  completed: {},
  rollout_failed: {},
  rejected: {},
  failed: {},
};

/**
 * What a fleet-server start does with a retrain found in each status: redo its work (and count it), wait
 * for what it waits for, or nothing.
 */
const RESTART: {
  [S in RetrainStatus]: 'final' | 'waiting' | ((record: RetrainRecord) => Effect[] | ErrorInfo);
} = {
  training: (r) =>
    r.run === null
      ? // Written before runs had their id fixed up front: its run cannot be found again.
        { code: 'interrupted', message: 'the fleet server stopped while the retrain was training' }
      : r.snapshot === null
        ? [startRun(r)]
        : [awaitRun(r)],
  setting_candidate: (r) => [setCandidate(r)],
  creating_rollout: (r) => [createRollout(r)],
  // An operator approves it, or its canary ends: nothing to redo.
  awaiting_approval: 'waiting',
  rolling_out: 'waiting',
  completed: 'final',
  rollout_failed: 'final',
  rejected: 'final',
  failed: 'final',
};

function restarted(r: RetrainRecord, at: string): Step {
  const redo = RESTART[r.status];
  if (redo === 'final' || redo === 'waiting') return { record: r, effects: [] };
  const count = (r.restarts?.status === r.status ? r.restarts.count : 0) + 1;
  if (count > MAX_RESTARTS)
    return fail(
      r,
      {
        code: 'crash_loop',
        message: `the fleet server stopped ${count} times in a row while the retrain was ${r.status}; it is not retried again`,
      },
      at,
    );
  const effects = redo(r);
  if (!Array.isArray(effects)) return fail(r, effects, at);
  return { record: { ...r, restarts: { status: r.status, count }, updatedAt: at }, effects };
}

function startRun(r: RetrainRecord): Effect {
  const since = r.trigger.driftSince;
  return {
    kind: 'start_run',
    run: r.run!,
    task: r.task,
    request: {
      ...(r.policy.trainConfig ? { config: r.policy.trainConfig } : {}),
      ...(since ? { recentSince: since } : {}),
      ...(since && r.policy.trainOn === 'recent' ? { since } : {}),
    },
    actor: `retrain:${r.id}`,
    trigger: { retrain: r.id, kind: r.trigger.kind, reason: r.trigger.reason },
  };
}

function awaitRun(r: RetrainRecord): Effect {
  return { kind: 'await_run', run: r.run! };
}

function setCandidate(r: RetrainRecord): Effect {
  return {
    kind: 'set_candidate',
    model: r.model,
    version: r.version!,
    actor: `retrain:${r.id}`,
    canary: r.policy.mode === 'auto',
  };
}

function createRollout(r: RetrainRecord): Effect {
  return {
    kind: 'create_rollout',
    id: r.rollout!,
    model: { name: r.model, version: r.version! },
    policy: r.policy,
    actor: `retrain:${r.id}${r.approvedBy === null ? '' : ` (approved by ${r.approvedBy})`}`,
  };
}

function fail(r: RetrainRecord, error: ErrorInfo, at: string, prefix = ''): Step {
  return advance(r, { status: 'failed', error }, [['failed', `${prefix}${error.message}`]], at);
}

/** The record with `changes` and the history entries appended; an audit effect per entry, before `then`. */
function advance(
  r: RetrainRecord,
  changes: Partial<RetrainRecord>,
  entries: [RetrainEvent['step'], string][],
  at: string,
  then: Effect[] = [],
): Step {
  const moved = changes.status !== undefined && changes.status !== r.status;
  const record: RetrainRecord = {
    ...r,
    ...changes,
    // Restarts are counted per status: a new status starts from none.
    ...(moved ? { restarts: null } : {}),
    updatedAt: at,
    events: [...r.events, ...entries.map(([step, message]) => ({ at, step, message }))],
  };
  const audits: Effect[] = entries.map(([step, message]) => ({ kind: 'audit', step, message }));
  return { record, effects: [...audits, ...then] };
}
