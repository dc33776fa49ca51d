/**
 * The loop that fixes drift: a retrain policy per task decides when the fleet retrains, and each retrain is
 * a record that goes snapshot → training → champion/challenger → candidate → canary rollout, every step
 * written down (why it fired, which snapshot and run, both models' metrics, the rollout it started).
 *
 * Trigger (checked after every drift report and on a timer): at least `deviceShare` of the devices running
 * the model's `production` version report drift, each for at least `forS`; or (with `onConcept`) a device on
 * production reports concept drift. One retrain per task at a time, and none within `cooldownS` of the
 * previous trigger: a fleet of drifting devices starts one retrain, not one per device. Manual triggers skip
 * the threshold and the cooldown but not the one-at-a-time rule.
 *
 * Evaluation: the run snapshots the pool (with the data captured since drift began, at the raised capture
 * rate) and scores the challenger and the champion on the holdout rows captured since the drift began (the
 * "recent holdout"); with too few such rows, on the whole holdout (and the record says so). The challenger
 * wins when it beats the champion by `margin` on the primary metric (accuracy for classifiers, RMSE for
 * regressors), or when there is no comparable champion. A winner becomes `candidate` and, by policy `auto`,
 * starts a canary rollout at once with the standard gates; by `approve`, it waits for an operator.
 *
 * Storage: `retrain-policies` task → RetrainPolicy; `retrains` id → RetrainRecord (ids sort by creation).
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import type { AuditLog } from '../audit/log.js';
import type { DeviceRegistry } from '../devices/registry.js';
import type { Pool } from '../pool/pool.js';
import type { ModelRegistry } from '../registry/models.js';
import type { RolloutController } from '../rollouts/controller.js';
import { FINAL_PHASES, type RolloutTargets } from '../rollouts/record.js';
import { PresetOptionsSchema, presetOptions, presetSpec } from '../rollouts/spec.js';
import type { Collection } from '../store/db.js';
import { SortableIds } from '../store/ids.js';
import type { Metrics } from '../training/metrics.js';
import type { RunTrigger, TrainingRuns } from '../training/runs.js';
import type { DriftReports } from './reports.js';

export const RetrainPolicySchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Share of the devices on the production version that must report drift (0 < share ≤ 1). */
    deviceShare: z.number().gt(0).max(1).default(0.5),
    /** Each of them for at least this long, seconds. */
    forS: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(300),
    /** Also trigger when a device on production reports concept drift (its loss on feedback rose). */
    onConcept: z.boolean().default(true),
    /** Quiet time after a trigger before the next automatic one, seconds. */
    cooldownS: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(3600),
    /** How much better the challenger must be on the primary metric (accuracy points, or RMSE units). */
    margin: z.number().min(0).default(0.01),
    /** `auto`: a winning challenger starts its canary at once; `approve`: it waits for `retrain approve`. */
    mode: z.enum(['auto', 'approve']).default('approve'),
    /**
     * What the retrain learns from: `recent`, the samples captured since the drift began (the world the model
     * must now serve; its reference statistics then describe it, so the drift clears), or `all` of the pool.
     * Without a known drift start (a manual trigger on a quiet fleet), the whole pool.
     */
    trainOn: z.enum(['recent', 'all']).default('recent'),
    /** Labeled samples captured since the drift began that the pool must hold before a drift retrain fires. */
    minNewSamples: z.number().int().min(0).default(200),
    /** Fewest recent holdout rows to judge on them; below, the whole holdout is used. */
    minRecentRows: z.number().int().min(1).default(20),
    /** Training configuration overrides (as `edgefleet train --config`). */
    trainConfig: z.record(z.string(), z.unknown()).optional(),
    /** The canary the winner goes out with (the `canary` preset's options). */
    rollout: PresetOptionsSchema.pick({
      steps: true,
      bakeS: true,
      windowS: true,
      shadowFirst: true,
      gates: true,
    })
      .strict()
      .default({}),
  })
  .strict();
export type RetrainPolicy = z.infer<typeof RetrainPolicySchema>;
export type RetrainPolicyInput = z.input<typeof RetrainPolicySchema>;

export interface StoredPolicy {
  task: string;
  policy: RetrainPolicy;
  updatedAt: string;
  updatedBy: string;
}

export type RetrainStatus =
  | 'training'
  | 'awaiting_approval'
  | 'rolling_out'
  /** Its canary reached every target: the retrained version is production. */
  | 'completed'
  /** Its canary failed or was rolled back (the rollout says why). */
  | 'rollout_failed'
  | 'rejected'
  | 'failed';
const UNFINISHED: readonly RetrainStatus[] = ['training'];

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

export interface RetrainRecord {
  id: string;
  task: string;
  model: string;
  trigger: {
    kind: RunTrigger['kind'];
    reason: string;
    actor: string;
    /** Drift triggers: the production version, the devices drifting and the share they make. */
    production: number | null;
    devices: string[];
    share: number | null;
    /** When the drift began (the earliest drifting device's verdict start); "recent" data is from then. */
    driftSince: string | null;
  };
  status: RetrainStatus;
  createdAt: string;
  updatedAt: string;
  policy: RetrainPolicy;
  snapshot: string | null;
  run: string | null;
  version: number | null;
  evaluation: {
    metric: 'accuracy' | 'rmse';
    on: 'recent_holdout' | 'holdout';
    rows: number;
    challenger: number;
    champion: number | null;
    championVersion: number | null;
    margin: number;
    won: boolean;
    detail: string;
  } | null;
  rollout: string | null;
  approvedBy: string | null;
  error: { code: string; message: string } | null;
  events: RetrainEvent[];
}

export class RetrainLoop {
  private readonly ids = new SortableIds('rt');
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> = Promise.resolve();
  private checkQueued = false;
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly policies: Collection<StoredPolicy>,
    private readonly records: Collection<RetrainRecord>,
    private readonly deps: {
      pool: Pool;
      training: TrainingRuns;
      models: ModelRegistry;
      rollouts: RolloutController;
      devices: DeviceRegistry;
      drift: DriftReports;
      /** Every step is appended to the audit trail as `system:retrain`. */
      audit?: Pick<AuditLog, 'append'>;
      now: () => Date;
      log: Logger;
    },
  ) {}

  /** Mark retrains cut off by a stop (their run was interrupted too) and start the periodic check. */
  async start(checkEveryMs = 5_000): Promise<void> {
    for (const record of await this.records.values()) {
      if (!UNFINISHED.includes(record.status)) continue;
      await this.save(
        record,
        {
          status: 'failed',
          error: { code: 'interrupted', message: 'the fleet server stopped while the retrain was training' },
        },
        { step: 'failed', message: 'interrupted by a fleet-server stop' },
      );
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
    const busy = await this.inProgress(task);
    if (busy)
      throw new ConflictError(
        `retrain ${busy.id} of task '${task}' is still ${busy.status}`,
        'retrain_in_progress',
      );
    const production = await this.productionOf(taskRecord.model);
    const drifting = production ? await this.driftingOn(taskRecord.model, production, 0) : [];
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

  /** Start the canary of a retrain waiting for approval. */
  async approve(id: string, actor: string): Promise<RetrainRecord> {
    const record = await this.get(id);
    if (record.status !== 'awaiting_approval')
      throw new ConflictError(
        `retrain ${id} is ${record.status}, not awaiting approval`,
        'not_awaiting_approval',
      );
    const approved = await this.save(
      record,
      { approvedBy: actor },
      { step: 'approved', message: `approved by ${actor}` },
    );
    return this.startRollout(approved, actor);
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
      if (rollout.status.phase === 'succeeded') {
        await this.save(
          record,
          { status: 'completed' },
          {
            step: 'completed',
            message: `rollout ${rollout.id} succeeded: ${record.model}@${record.version} runs on every target and is production`,
          },
        );
      } else {
        const why = rollout.status.abort?.reason.message ?? rollout.status.phase;
        await this.save(
          record,
          { status: 'rollout_failed' },
          {
            step: 'rollout_failed',
            message: `rollout ${rollout.id} ended ${rollout.status.phase}: ${why}`,
          },
        );
      }
    }
  }

  private async checkTask(task: string, policy: RetrainPolicy, now: number): Promise<void> {
    const taskRecord = await this.deps.pool.getTask(task);
    const model = taskRecord.model;
    const production = await this.productionOf(model);
    if (production === null) return; // nothing in production yet: nothing can have drifted from it
    const records = await this.list(task);
    if (records.some((r) => UNFINISHED.includes(r.status))) return; // one retrain per task at a time
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

  private async begin(
    task: string,
    model: string,
    policy: RetrainPolicy,
    trigger: RetrainRecord['trigger'],
  ): Promise<RetrainRecord> {
    const now = this.deps.now();
    const id = this.ids.next(now);
    const record: RetrainRecord = {
      id,
      task,
      model,
      trigger,
      status: 'training',
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      policy,
      snapshot: null,
      run: null,
      version: null,
      evaluation: null,
      rollout: null,
      approvedBy: null,
      error: null,
      events: [{ at: now.toISOString(), step: 'triggered', message: trigger.reason }],
    };
    await this.records.put(id, record);
    this.deps.log.info(
      { retrain: id, task, trigger: trigger.kind, reason: trigger.reason },
      'retrain triggered',
    );
    await this.audit(id, 'triggered', `${trigger.kind} trigger by ${trigger.actor}: ${trigger.reason}`);
    const work = this.proceed(record).finally(() => this.running.delete(work));
    this.running.add(work);
    return record;
  }

  /** Train, evaluate, and hand the winner on. Never rejects: failures end in the record. */
  private async proceed(record: RetrainRecord): Promise<void> {
    let current = record;
    try {
      const run = await this.deps.training.start(
        record.task,
        {
          ...(record.policy.trainConfig ? { config: record.policy.trainConfig } : {}),
          ...(record.trigger.driftSince ? { recentSince: record.trigger.driftSince } : {}),
          ...(record.trigger.driftSince && record.policy.trainOn === 'recent'
            ? { since: record.trigger.driftSince }
            : {}),
        },
        `retrain:${record.id}`,
        { retrain: record.id, kind: record.trigger.kind, reason: record.trigger.reason },
        { setCandidate: false },
      );
      current = await this.save(
        current,
        { snapshot: run.snapshot, run: run.id },
        {
          step: 'training',
          message: `training run ${run.id} on snapshot ${run.snapshot}`,
        },
      );
      const finished = await this.deps.training.settled(run.id);
      if (finished.status !== 'succeeded' || !finished.result) {
        const error = finished.error ?? { code: 'training_failed', message: `run ended ${finished.status}` };
        await this.save(
          current,
          { status: 'failed', error },
          { step: 'failed', message: `training failed: ${error.message}` },
        );
        return;
      }
      const version = finished.result.version;
      current = await this.save(
        current,
        { version },
        { step: 'trained', message: `${record.model}@${version} trained` },
      );
      const evaluation = evaluate(finished.result, record.policy);
      current = await this.save(current, { evaluation }, { step: 'evaluated', message: evaluation.detail });
      if (!evaluation.won) {
        await this.save(
          current,
          { status: 'rejected' },
          {
            step: 'rejected',
            message: `${record.model}@${version} kept out of production: ${evaluation.detail}`,
          },
        );
        return;
      }
      await this.deps.models.setAlias(record.model, 'candidate', version, `retrain:${record.id}`);
      if (record.policy.mode === 'auto') {
        await this.startRollout(current, 'retrain-policy');
      } else {
        await this.save(
          current,
          { status: 'awaiting_approval' },
          {
            step: 'awaiting_approval',
            message: `${record.model}@${version} is the candidate; \`edgefleet retrain approve ${record.id}\` starts its canary`,
          },
        );
      }
    } catch (err) {
      const error = {
        code: (err as { code?: string }).code ?? 'retrain_failed',
        message: (err as Error).message,
      };
      this.deps.log.warn({ err, retrain: record.id }, 'retrain failed');
      await this.save(current, { status: 'failed', error }, { step: 'failed', message: error.message }).catch(
        (e) => this.deps.log.error({ err: e }, 'retrain failure not saved'),
      );
    }
  }

  private async startRollout(record: RetrainRecord, actor: string): Promise<RetrainRecord> {
    const rollout = await this.deps.rollouts.create({
      model: { name: record.model, version: record.version! },
      targets: await this.targetsOf(record.model),
      spec: rolloutSpecOf(record.policy),
      actor: `retrain:${record.id}${actor === 'retrain-policy' ? '' : ` (approved by ${actor})`}`,
    });
    return this.save(
      record,
      { status: 'rolling_out', rollout: rollout.id },
      {
        step: 'rollout',
        message: `canary rollout ${rollout.id} of ${record.model}@${record.version} started`,
      },
    );
  }

  /** Where the production version went: the targets of its latest successful rollout, else every device running the model. */
  private async targetsOf(model: string): Promise<RolloutTargets> {
    const succeeded = (await this.deps.rollouts.list()).find(
      (r) => r.model.name === model && r.status.phase === 'succeeded',
    );
    if (succeeded) return succeeded.targets;
    const devices = (await this.deps.devices.list()).filter((d) => d.models.some((m) => m.name === model));
    if (devices.length === 0)
      throw new ConflictError(
        `no device runs ${model}: nothing to roll the retrained version out to`,
        'no_targets',
      );
    return { devices: devices.map((d) => d.id) };
  }

  private async productionOf(model: string): Promise<number | null> {
    try {
      return (await this.deps.models.resolve(model, 'production')).version;
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  private async driftingOn(model: string, version: number, forMs: number) {
    const now = this.deps.now().getTime();
    return (await this.deps.drift.devices(model)).filter(
      (d) => d.version === version && d.verdict === 'drift' && now - d.since >= forMs,
    );
  }

  private async inProgress(task: string): Promise<RetrainRecord | undefined> {
    return (await this.list(task)).find((r) => UNFINISHED.includes(r.status));
  }

  private async audit(id: string, step: string, detail: string): Promise<void> {
    await this.deps.audit
      ?.append({ actor: 'system:retrain', action: `retrain.${step}`, target: `retrains/${id}`, detail })
      .catch((err) => this.deps.log.error({ err, retrain: id }, 'audit append failed'));
  }

  private async save(
    record: RetrainRecord,
    changes: Partial<RetrainRecord>,
    event: Omit<RetrainEvent, 'at'>,
  ): Promise<RetrainRecord> {
    const at = this.deps.now().toISOString();
    const next = { ...record, ...changes, updatedAt: at, events: [...record.events, { at, ...event }] };
    await this.records.put(record.id, next);
    this.deps.log.info({ retrain: record.id, step: event.step }, event.message);
    await this.audit(record.id, event.step, event.message);
    return next;
  }
}

function rolloutSpecOf(policy: RetrainPolicy) {
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

/** Challenger against champion on the primary metric, on the recent holdout when it has enough rows. */
export function evaluate(
  result: {
    version: number;
    metrics: Metrics;
    champion: {
      version: number;
      metrics: Metrics | null;
      reason: string | null;
      recentMetrics?: Metrics | null;
    } | null;
    recent?: { rows: number; metrics: Metrics } | null;
  },
  policy: Pick<RetrainPolicy, 'margin' | 'minRecentRows'>,
): NonNullable<RetrainRecord['evaluation']> {
  const metric = result.metrics.kind === 'classification' ? 'accuracy' : 'rmse';
  const value = (m: Metrics): number => (m.kind === 'classification' ? m.accuracy : m.rmse);
  const useRecent = result.recent != null && result.recent.rows >= policy.minRecentRows;
  const challenger = value(useRecent ? result.recent!.metrics : result.metrics);
  const championMetrics = useRecent
    ? (result.champion?.recentMetrics ?? null)
    : (result.champion?.metrics ?? null);
  const champion = championMetrics ? value(championMetrics) : null;
  const on = useRecent ? 'recent_holdout' : 'holdout';
  const rows = useRecent ? result.recent!.rows : result.metrics.rows;
  const where = `${on === 'recent_holdout' ? 'recent holdout' : 'holdout'} (${rows} rows)`;
  const fmt = (x: number) => x.toFixed(4);
  if (champion === null) {
    return {
      metric,
      on,
      rows,
      challenger,
      champion: null,
      championVersion: result.champion?.version ?? null,
      margin: policy.margin,
      won: true,
      detail: `no comparable champion (${result.champion?.reason ?? 'none in production'}); challenger ${metric} ${fmt(challenger)} on the ${where}`,
    };
  }
  const gain = metric === 'accuracy' ? challenger - champion : champion - challenger;
  const won = gain >= policy.margin;
  return {
    metric,
    on,
    rows,
    challenger,
    champion,
    championVersion: result.champion!.version,
    margin: policy.margin,
    won,
    detail: `challenger v${result.version} ${metric} ${fmt(challenger)} vs champion v${result.champion!.version} ${fmt(champion)} on the ${where}: ${won ? 'wins' : 'does not win'} by the margin ${policy.margin}`,
  };
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}
