/**
 * A retrain as data: the policy that decides when a task retrains, and the record of one retrain — why it
 * fired, which snapshot and run, both models' metrics, the rollout it started — as `step.ts` moves it and
 * `loop.ts` persists it.
 *
 * Invariant: every id a status acts on is in the record before that status is persisted — the training run's
 * (`training`, `run`) and the canary's (`creating_rollout`, `rollout`) — so acting again after a crash finds
 * what the first attempt made instead of making it twice.
 *
 * Storage: `retrain-policies` task → StoredPolicy; `retrains` id → RetrainRecord (ids sort by creation).
 */
import type { z } from 'zod';
import { RETRAIN_STATUSES, RetrainPolicySchema, type RetrainStatus } from '../../shared/api/drift.js';
import type { RunTrigger } from '../training/runs.js';

// A wire type too (the policy request and every retrain record carry it): defined in shared/api, on the
// create-rollout request's preset options.
export { RetrainPolicySchema };
export type RetrainPolicy = z.infer<typeof RetrainPolicySchema>;
export type RetrainPolicyInput = z.input<typeof RetrainPolicySchema>;

export interface StoredPolicy {
  task: string;
  policy: RetrainPolicy;
  updatedAt: string;
  updatedBy: string;
}

/**
 * The statuses, as the wire contract names them (shared/api/drift.ts). `training`: the run's id is fixed
 * (`run`); the run is started (again, idempotently, after a crash) and awaited. `creating_rollout`: the
 * canary's id is fixed (`rollout`); the rollout is created under it (again, idempotently). `completed`: its
 * canary reached every target. `rollout_failed`: its canary failed or was rolled back (the rollout says why).
 */
export { RETRAIN_STATUSES, type RetrainStatus };

/**
 * Statuses in which the retrain is still working toward a candidate or its canary: one of these per task at
 * a time. (Waiting for approval or following a canary does not hold the next trigger back.)
 */
export const WORKING: readonly RetrainStatus[] = ['training', 'setting_candidate', 'creating_rollout'];
export const FINAL: readonly RetrainStatus[] = ['completed', 'rollout_failed', 'rejected', 'failed'];

/** One entry of a retrain's history (also appended to the audit trail as `retrain.<step>`). */
export interface RetrainEvent {
  at: string;
  step:
    | 'completed'
    | 'rollout_failed'
    | 'triggered'
    | 'training'
    | 'trained'
    | 'evaluated'
    | 'awaiting_approval'
    | 'approved'
    | 'rollout'
    | 'rejected'
    | 'failed';
  message: string;
}

export interface Evaluation {
  metric: 'accuracy' | 'rmse';
  on: 'recent_holdout' | 'holdout';
  rows: number;
  challenger: number;
  champion: number | null;
  championVersion: number | null;
  margin: number;
  won: boolean;
  detail: string;
}

export interface RetrainTrigger {
  kind: RunTrigger['kind'];
  reason: string;
  actor: string;
  /** Drift triggers: the production version, the devices drifting and the share they make. */
  production: number | null;
  devices: string[];
  share: number | null;
  /** When the drift began (the earliest drifting device's verdict start); "recent" data is from then. */
  driftSince: string | null;
}

export interface RetrainRecord {
  id: string;
  task: string;
  model: string;
  trigger: RetrainTrigger;
  status: RetrainStatus;
  createdAt: string;
  updatedAt: string;
  policy: RetrainPolicy;
  snapshot: string | null;
  run: string | null;
  version: number | null;
  evaluation: Evaluation | null;
  rollout: string | null;
  approvedBy: string | null;
  error: { code: string; message: string } | null;
  events: RetrainEvent[];
  /**
   * How many times in a row a fleet-server start found the record in `status` (absent in records written
   * before restarts were counted): past a limit, the retrain fails instead of crashing the fleet again.
   */
  restarts?: { status: RetrainStatus; count: number } | null;
}

/** A new retrain: `training`, with its run's id already fixed. */
export function newRetrain(input: {
  id: string;
  run: string;
  task: string;
  model: string;
  policy: RetrainPolicy;
  trigger: RetrainTrigger;
  at: string;
}): RetrainRecord {
  return {
    id: input.id,
    task: input.task,
    model: input.model,
    trigger: input.trigger,
    status: 'training',
    createdAt: input.at,
    updatedAt: input.at,
    policy: input.policy,
    snapshot: null,
    run: input.run,
    version: null,
    evaluation: null,
    rollout: null,
    approvedBy: null,
    error: null,
    events: [{ at: input.at, step: 'triggered', message: input.trigger.reason }],
    restarts: null,
  };
}
