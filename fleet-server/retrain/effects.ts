/**
 * Carrying out a retrain's effects (step.ts) against the fleet: training runs, the registry, rollouts. Each
 * answers with the event that step takes next. Every effect is safe to carry out again after a crash: runs
 * and rollouts are made under ids the record already holds, and moving an alias where it already points
 * changes nothing.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { ConflictError, ValidationError } from '../../shared/errors.js';
import type { AuditLog } from '../audit/log.js';
import type { DeviceRegistry } from '../devices/registry.js';
import type { ModelRegistry } from '../registry/models.js';
import type { RolloutController } from '../rollouts/controller.js';
import type { RolloutTargets } from '../rollouts/record.js';
import { presetOptions, presetSpec } from '../rollouts/spec.js';
import type { TrainingRuns } from '../training/runs.js';
import type { RetrainPolicy } from './record.js';
import type { Effect, ErrorInfo, StepEvent } from './step.js';

export interface EffectDeps {
  training: Pick<TrainingRuns, 'start' | 'settled'>;
  models: Pick<ModelRegistry, 'setAlias'>;
  rollouts: Pick<RolloutController, 'create' | 'list' | 'newId'>;
  devices: Pick<DeviceRegistry, 'list'>;
  /** Every history entry is appended to the audit trail as `system:retrain`. */
  audit?: Pick<AuditLog, 'append'>;
  log: Logger;
}

/**
 * The event the effect's outcome is; null for one that only reports (audit). Never rejects: a failure is an
 * event too, and the error itself goes to `onError` (an operator's approval throws what refused its canary).
 */
export async function carryOut(
  retrain: string,
  effect: Effect,
  deps: EffectDeps,
  onError?: (err: unknown) => void,
): Promise<StepEvent | null> {
  try {
    switch (effect.kind) {
      case 'start_run': {
        const run = await deps.training.start(effect.task, effect.request, effect.actor, effect.trigger, {
          setCandidate: false,
          id: effect.run,
        });
        return { type: 'run_started', snapshot: run.snapshot };
      }
      case 'await_run': {
        const run = await deps.training.settled(effect.run);
        return { type: 'run_settled', status: run.status, result: run.result, error: run.error };
      }
      case 'set_candidate':
        await deps.models.setAlias(effect.model, 'candidate', effect.version, effect.actor);
        // The canary's id, fixed now so that `creating_rollout` is persisted with it before it is created.
        return { type: 'candidate_set', rollout: effect.canary ? deps.rollouts.newId() : null };
      case 'create_rollout':
        try {
          await deps.rollouts.create({
            id: effect.id,
            model: effect.model,
            targets: await targetsOf(effect.model.name, deps),
            spec: rolloutSpecOf(effect.policy),
            actor: effect.actor,
          });
          return { type: 'rollout_created' };
        } catch (err) {
          onError?.(err);
          return { type: 'rollout_refused', error: errorInfo(err) };
        }
      case 'audit':
        deps.log.info({ retrain, step: effect.step }, effect.message);
        await deps.audit
          ?.append({
            actor: 'system:retrain',
            action: `retrain.${effect.step}`,
            target: `retrains/${retrain}`,
            detail: effect.message,
          })
          .catch((err) => deps.log.error({ err, retrain }, 'audit append failed'));
        return null;
      default:
        return effect satisfies never;
    }
  } catch (err) {
    onError?.(err);
    deps.log.warn({ err, retrain, effect: effect.kind }, 'retrain failed');
    return { type: 'effect_failed', error: errorInfo(err) };
  }
}

export function errorInfo(err: unknown): ErrorInfo {
  return {
    code: (err as { code?: string }).code ?? 'retrain_failed',
    message: (err as Error).message ?? String(err),
  };
}

/** The canary a policy sends a winner out with; a ValidationError (`invalid_policy`) when it cannot be built. */
export function rolloutSpecOf(policy: RetrainPolicy) {
  const r = policy.rollout;
  try {
    return presetSpec('canary', {
      ...presetOptions(r),
      // Off unless asked for: a challenger trained on drifted data is meant to disagree with the champion, so
      // shadow agreement would stop exactly the versions the loop exists to ship. It was judged on accuracy.
      shadowFirst: r.shadowFirst ?? false,
    });
  } catch (err) {
    const message =
      err instanceof z.ZodError ? z.prettifyError(err).replaceAll('\n', '; ') : (err as Error).message;
    throw new ValidationError(`retrain policy rollout: ${message}`, { code: 'invalid_policy' });
  }
}

/** Where the production version went: the targets of its latest successful rollout, else every device running the model. */
async function targetsOf(model: string, deps: EffectDeps): Promise<RolloutTargets> {
  const succeeded = (await deps.rollouts.list()).find(
    (r) => r.model.name === model && r.status.phase === 'succeeded',
  );
  if (succeeded) return succeeded.targets;
  const devices = (await deps.devices.list()).filter((d) => d.models.some((m) => m.name === model));
  if (devices.length === 0)
    throw new ConflictError(
      `no device runs ${model}: nothing to roll the retrained version out to`,
      'no_targets',
    );
  return { devices: devices.map((d) => d.id) };
}
