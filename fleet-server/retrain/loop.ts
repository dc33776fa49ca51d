/**
 * The loop that fixes drift: a retrain policy per task decides when the fleet retrains, and each retrain is a
 * record that goes snapshot → training → champion/challenger → candidate → canary rollout (record.ts), moved
 * by the pure transition table of step.ts. This class is its driver: it applies an event under the record's
 * lock, **persists the new record before it carries out any effect** the step returned (effects.ts), and on
 * `start` feeds every retrain a `restarted` event, whose per-status row says what to redo.
 *
 * Trigger (checked after every drift report and on a timer): at least `deviceShare` of the devices running
 * the model's `production` version report drift, each for at least `forS`; or (with `onConcept`) a device on
 * production reports concept drift. One retrain per task at a time, and none within `cooldownS` of the
 * previous trigger: a fleet of drifting devices starts one retrain, not one per device. Manual triggers skip
 * the threshold and the cooldown but not the one-at-a-time rule.
 *
 * Evaluation (evaluate.ts): the run snapshots the pool (with the data captured since drift began, at the
 * raised capture rate) and scores challenger and champion on the "recent holdout". A winner becomes
 * `candidate` and, by policy `auto`, starts a canary rollout at once with the standard gates; by `approve`,
 * it waits for an operator.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import type { DeviceRegistry } from '../devices/registry.js';
import type { DriftReports } from '../drift/reports.js';
import type { Pool } from '../pool/pool.js';
import type { ModelRegistry } from '../registry/models.js';
import type { RolloutController } from '../rollouts/controller.js';
import { FINAL_PHASES } from '../rollouts/record.js';
import type { Collection } from '../store/db.js';
import { SortableIds } from '../store/ids.js';
import { KeyedMutex } from '../store/lock.js';
import type { TrainingRuns } from '../training/runs.js';
import { carryOut, type EffectDeps, rolloutSpecOf } from './effects.js';
import {
  FINAL,
  newRetrain,
  type RetrainPolicy,
  type RetrainPolicyInput,
  RetrainPolicySchema,
  type RetrainRecord,
  type RetrainTrigger,
  type StoredPolicy,
  WORKING,
} from './record.js';
import { begun, type Effect, type StepEvent, step } from './step.js';

export interface RetrainLoopDeps extends EffectDeps {
  pool: Pick<Pool, 'getTask' | 'labeledSince'>;
  training: Pick<TrainingRuns, 'start' | 'settled' | 'newId'>;
  models: Pick<ModelRegistry, 'setAlias' | 'resolve'>;
  rollouts: Pick<RolloutController, 'create' | 'list' | 'newId'>;
  devices: Pick<DeviceRegistry, 'list'>;
  drift: Pick<DriftReports, 'devices'>;
  now: () => Date;
  log: Logger;
  /** Told right after each new record is persisted, before its effects (the fault hook of crash tests). */
  afterPersist?: (record: RetrainRecord) => void;
}

export class RetrainLoop {
  private readonly ids = new SortableIds('rt');
  private readonly lock = new KeyedMutex();
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> = Promise.resolve();
  private checkQueued = false;
  private readonly running = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly policies: Collection<StoredPolicy>,
    private readonly records: Collection<RetrainRecord>,
    private readonly deps: RetrainLoopDeps,
  ) {}

  /**
   * Recover every retrain from its persisted record (redo the work of its status, or fail it after too many
   * restarts in it), then start the periodic check. Call after training runs and rollouts have recovered.
   */
  async start(checkEveryMs = 5_000): Promise<void> {
    for (const record of await this.records.values()) {
      if (FINAL.includes(record.status)) continue;
      const { effects } = await this.transition(record.id, { type: 'restarted' });
      this.background(record.id, effects);
    }
    this.timer = setInterval(() => this.check(), checkEveryMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.checking;
    await Promise.allSettled([...this.running]);
  }

  async setPolicy(task: string, input: RetrainPolicyInput, actor: string): Promise<StoredPolicy> {
    await this.deps.pool.getTask(task); // 404 for an unknown task
    const parsed = RetrainPolicySchema.safeParse(input);
    if (!parsed.success)
      throw new ValidationError(`retrain policy: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`, {
        code: 'invalid_policy',
      });
    rolloutSpecOf(parsed.data); // a policy whose canary cannot be built is refused now, not at trigger time
    const stored = { task, policy: parsed.data, updatedAt: this.deps.now().toISOString(), updatedBy: actor };
    await this.policies.put(task, stored);
    this.check();
    return stored;
  }

  async policy(task: string): Promise<StoredPolicy> {
    await this.deps.pool.getTask(task);
    const stored = await this.policies.get(task);
    if (!stored) throw new NotFoundError('retrain policy for task', task);
    return stored;
  }

  async get(id: string): Promise<RetrainRecord> {
    const record = await this.records.get(id);
    if (!record) throw new NotFoundError('retrain', id);
    return record;
  }

  /** Newest first; only the task's when given. */
  async list(task?: string): Promise<RetrainRecord[]> {
    const all = (await this.records.values()).reverse();
    return task === undefined ? all : all.filter((r) => r.task === task);
  }

  /** Re-check every policy soon (called after drift reports). Checks never overlap. */
  check(): void {
    // Drift reports from a whole fleet can ask many times a second: one check waiting to run serves them all.
    if (this.closed || this.checkQueued) return;
    this.checkQueued = true;
    this.checking = this.checking
      .then(() => {
        this.checkQueued = false;
        return this.checkAll();
      })
      .catch((err) => this.deps.log.error({ err }, 'retrain policy check failed'));
  }

  /** Resolves once the checks queued so far and the retrains they started have finished (tests). */
  async idle(): Promise<void> {
    await this.checking;
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** An operator's retrain: no threshold, no cooldown; still one at a time per task. */
  async trigger(task: string, actor: string, reason = 'manual trigger'): Promise<RetrainRecord> {
    const taskRecord = await this.deps.pool.getTask(task);
    const stored = await this.policies.get(task);
    const policy = stored?.policy ?? RetrainPolicySchema.parse({});
    const busy = (await this.list(task)).find((r) => WORKING.includes(r.status));
    if (busy)
      throw new ConflictError(
        `retrain ${busy.id} of task '${task}' is still ${busy.status}`,
        'retrain_in_progress',
      );
    const production = await this.productionOf(taskRecord.model);
    const drifting = production ? await this.driftingOn(taskRecord.model, production) : [];
    return this.begin(task, taskRecord.model, policy, {
      kind: 'manual',
      reason,
      actor,
      production,
      devices: drifting.map((d) => d.deviceId),
      share: null,
      driftSince:
        drifting.length > 0 ? new Date(Math.min(...drifting.map((d) => d.since))).toISOString() : null,
    });
  }

  /** Start the canary of a retrain waiting for approval; what refuses the canary is thrown, and it waits on. */
  async approve(id: string, actor: string): Promise<RetrainRecord> {
    await this.get(id); // 404 for an unknown retrain
    let refusal: unknown;
    const { effects } = await this.transition(id, (current) => {
      if (current.status !== 'awaiting_approval')
        throw new ConflictError(
          `retrain ${id} is ${current.status}, not awaiting approval`,
          'not_awaiting_approval',
        );
      return { type: 'approved', actor, rollout: this.deps.rollouts.newId() };
    });
    const record = await this.drive(id, effects, (err) => {
      refusal = err;
    });
    if (record.status === 'awaiting_approval' && refusal !== undefined) throw refusal;
    return record;
  }

  private async begin(
    task: string,
    model: string,
    policy: RetrainPolicy,
    trigger: RetrainTrigger,
  ): Promise<RetrainRecord> {
    const now = this.deps.now();
    const record = newRetrain({
      id: this.ids.next(now),
      // Fixed before the record is written, so a restart finds the run this retrain started.
      run: this.deps.training.newId(),
      task,
      model,
      policy,
      trigger,
      at: now.toISOString(),
    });
    await this.persist(record);
    this.background(record.id, begun(record));
    return record;
  }

  /**
   * Apply one event to the stored record under its lock and persist the result before anything acts on it.
   * `event` may be a function of the current record (which may throw to refuse).
   */
  private transition(
    id: string,
    event: StepEvent | ((current: RetrainRecord) => StepEvent),
  ): Promise<{ record: RetrainRecord; effects: Effect[] }> {
    return this.lock.run(id, async () => {
      const current = await this.get(id);
      const next = step(current, typeof event === 'function' ? event(current) : event, this.at());
      if (next.record !== current) await this.persist(next.record);
      return next;
    });
  }

  /** Carry out effects in order, feeding each outcome back through `transition`. Never rejects. */
  private async drive(
    id: string,
    effects: Effect[],
    onError?: (err: unknown) => void,
  ): Promise<RetrainRecord> {
    const queue = [...effects];
    try {
      for (let effect = queue.shift(); effect; effect = queue.shift()) {
        const event = await carryOut(id, effect, this.deps, onError);
        if (event) queue.push(...(await this.transition(id, event)).effects);
      }
    } catch (err) {
      // Only the store can fail here (effects answer with events): the record keeps its last persisted
      // status, and the next start redoes it.
      this.deps.log.error({ err, retrain: id }, 'retrain step not saved');
    }
    return this.get(id);
  }

  private background(id: string, effects: Effect[]): void {
    if (effects.length === 0) return;
    const work = this.drive(id, effects).finally(() => this.running.delete(work));
    this.running.add(work);
  }

  private async persist(record: RetrainRecord): Promise<void> {
    await this.records.put(record.id, record);
    this.deps.afterPersist?.(record);
  }

  private at(): string {
    return this.deps.now().toISOString();
  }

  private async checkAll(): Promise<void> {
    await this.followRollouts();
    const now = this.deps.now().getTime();
    for (const { task, policy } of await this.policies.values()) {
      if (!policy.enabled || this.closed) continue;
      try {
        await this.checkTask(task, policy, now);
      } catch (err) {
        this.deps.log.error({ err, task }, 'retrain policy check failed for a task');
      }
    }
  }

  /** Retrains whose canary has finished take its outcome. */
  private async followRollouts(): Promise<void> {
    const waiting = (await this.records.values()).filter((r) => r.status === 'rolling_out' && r.rollout);
    if (waiting.length === 0) return;
    const rollouts = new Map((await this.deps.rollouts.list()).map((r) => [r.id, r]));
    for (const record of waiting) {
      const rollout = rollouts.get(record.rollout!);
      if (!rollout || !FINAL_PHASES.includes(rollout.status.phase)) continue;
      const { effects } = await this.transition(record.id, {
        type: 'rollout_ended',
        phase: rollout.status.phase,
        reason: rollout.status.abort?.reason.message ?? null,
      });
      await this.drive(record.id, effects);
    }
  }

  private async checkTask(task: string, policy: RetrainPolicy, now: number): Promise<void> {
    const taskRecord = await this.deps.pool.getTask(task);
    const model = taskRecord.model;
    const production = await this.productionOf(model);
    if (production === null) return; // nothing in production yet: nothing can have drifted from it
    const records = await this.list(task);
    if (records.some((r) => WORKING.includes(r.status))) return; // one retrain per task at a time
    const last = records[0];
    if (last && now - Date.parse(last.createdAt) < policy.cooldownS * 1000) return;
    // A rollout of the model under way changes what production is: wait for it to finish.
    if (
      (await this.deps.rollouts.list()).some(
        (r) => r.model.name === model && !FINAL_PHASES.includes(r.status.phase),
      )
    )
      return;

    const onProduction = (await this.deps.devices.list()).filter((d) =>
      d.models.some((m) => m.name === model && m.version === production),
    );
    if (onProduction.length === 0) return;
    const ids = new Set(onProduction.map((d) => d.id));
    const reports = (await this.deps.drift.devices(model)).filter(
      (d) => ids.has(d.deviceId) && d.version === production,
    );
    const drifting = reports.filter((d) => d.verdict === 'drift' && now - d.since >= policy.forS * 1000);
    const share = drifting.length / onProduction.length;
    const base = { actor: 'retrain-policy', production, share, devices: drifting.map((d) => d.deviceId) };
    // Enough new labeled data to learn the new world from (the devices capture more while they drift).
    const enoughData = async (sinceMs: number) =>
      policy.minNewSamples === 0 ||
      (await this.deps.pool.labeledSince(taskRecord, sinceMs)) >= policy.minNewSamples;
    if (drifting.length > 0 && share >= policy.deviceShare) {
      const since = Math.min(...drifting.map((d) => d.since));
      if (!(await enoughData(since))) return;
      await this.begin(task, model, policy, {
        ...base,
        kind: 'drift',
        reason: `${drifting.length} of ${onProduction.length} devices on ${model}@${production} (${pct(share)}) have reported drift for at least ${policy.forS} s (policy: ${pct(policy.deviceShare)})`,
        driftSince: new Date(since).toISOString(),
      });
      return;
    }
    if (policy.onConcept) {
      const concept = reports.filter((d) => d.conceptSince !== null);
      if (concept.length > 0 && (await enoughData(Math.min(...concept.map((d) => d.conceptSince!))))) {
        await this.begin(task, model, policy, {
          ...base,
          devices: concept.map((d) => d.deviceId),
          share: concept.length / onProduction.length,
          kind: 'concept',
          reason: `concept drift on ${concept.length} of ${onProduction.length} devices on ${model}@${production}: the loss on their feedback rose`,
          driftSince: new Date(Math.min(...concept.map((d) => d.conceptSince!))).toISOString(),
        });
      }
    }
  }

  private async productionOf(model: string): Promise<number | null> {
    try {
      return (await this.deps.models.resolve(model, 'production')).version;
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  private async driftingOn(model: string, version: number) {
    const now = this.deps.now().getTime();
    return (await this.deps.drift.devices(model)).filter(
      (d) => d.version === version && d.verdict === 'drift' && now >= d.since,
    );
  }
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}
