/**
 * `edgefleet drift status [--task T]`: per model, drift by version and feature, each device's verdict and
 * since when, and the latest retrain. `edgefleet retrain policy set|show --task T`, `retrain trigger`,
 * `retrain list|show`, `retrain approve ID`: the loop from drift to a canary of a retrained version.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { ModelDrift, RetrainPolicyInput, RetrainRecord, StoredPolicy } from '../client.js';
import type { CliContext } from '../context.js';
import { fields, formatAgo, orDash, table } from '../format.js';
import { parseDuration, parsePercents } from '../parse.js';

export function registerDrift(program: Command, ctx: CliContext): void {
  const drift = program.command('drift').description('drift reported by devices');
  drift
    .command('status')
    .description('drift per model version, feature and device, and the latest retrain')
    .option('--task <name>', "only this task's model")
    .option('--cohort <by>', 'also break drift down by cohort: profile, or tag:<key>')
    .option('--json', 'print the API response as JSON')
    .action(async (options: { task?: string; cohort?: string; json?: boolean }, command: Command) => {
      const result = await ctx.connect(command).driftStatus({ task: options.task, cohort: options.cohort });
      if (options.json) return ctx.printJson(result);
      if (result.models.length === 0) return ctx.out('no drift reports yet\n');
      ctx.out(result.models.map((m) => modelDrift(m, ctx.io.now())).join('\n'));
    });

  const retrain = program.command('retrain').description('retraining when the fleet drifts');
  const policy = retrain.command('policy').description("a task's retrain policy");
  policy
    .command('set')
    .description('set (replace) the retrain policy of a task; unset options take their defaults')
    .requiredOption('--task <name>', 'the task')
    .option(
      '--device-share <percent>',
      'share of devices on production that must report drift (e.g. 30%)',
      share,
    )
    .option(
      '--for <duration>',
      'each of them for at least this long (e.g. 5m; 0 for at once)',
      durationOrZero,
    )
    .option('--cooldown <duration>', 'quiet time after a trigger (e.g. 1h; 0 for none)', durationOrZero)
    .option('--margin <number>', 'how much the challenger must win by (accuracy points or RMSE)', nonNegative)
    .addOption(
      new Option('--mode <mode>', 'auto: canary at once; approve: wait for `retrain approve`').choices([
        'auto',
        'approve',
      ]),
    )
    .option('--no-concept', 'do not trigger on concept drift (loss on feedback rising)')
    .option('--disabled', 'keep the policy but trigger nothing')
    .option('--steps <percents>', 'canary steps of the rollout (e.g. 10,50,100)', parsePercents)
    .option('--window <duration>', 'canary analysis window', parseDuration)
    .option(
      '--shadow-first',
      'shadow the candidate on the first cohort before it serves (off: it is meant to disagree)',
    )
    .option('--min-recent-rows <n>', 'fewest recent holdout rows to judge on them', positiveInt)
    .option('--json', 'print the stored policy as JSON')
    .action(
      async (
        options: {
          task: string;
          deviceShare?: number;
          for?: number;
          cooldown?: number;
          margin?: number;
          mode?: 'auto' | 'approve';
          concept: boolean;
          disabled?: boolean;
          steps?: number[];
          window?: number;
          shadowFirst?: boolean;
          minRecentRows?: number;
          json?: boolean;
        },
        command: Command,
      ) => {
        const body: RetrainPolicyInput = {
          enabled: !options.disabled,
          onConcept: options.concept,
          ...(options.deviceShare !== undefined ? { deviceShare: options.deviceShare } : {}),
          ...(options.for !== undefined ? { forS: options.for } : {}),
          ...(options.cooldown !== undefined ? { cooldownS: options.cooldown } : {}),
          ...(options.margin !== undefined ? { margin: options.margin } : {}),
          ...(options.mode !== undefined ? { mode: options.mode } : {}),
          ...(options.minRecentRows !== undefined ? { minRecentRows: options.minRecentRows } : {}),
          rollout: {
            ...(options.steps ? { steps: options.steps } : {}),
            ...(options.window !== undefined ? { windowS: options.window } : {}),
            ...(options.shadowFirst ? { shadowFirst: true } : {}),
          },
        };
        const stored = await ctx.connect(command).setRetrainPolicy(options.task, body);
        if (options.json) return ctx.printJson(stored);
        ctx.out(`retrain policy of task ${stored.task} set\n${policyFields(stored)}`);
      },
    );
  policy
    .command('show')
    .description('the retrain policy of a task')
    .requiredOption('--task <name>', 'the task')
    .option('--json', 'print the API response as JSON')
    .action(async (options: { task: string; json?: boolean }, command: Command) => {
      const stored = await ctx.connect(command).getRetrainPolicy(options.task);
      if (options.json) return ctx.printJson(stored);
      ctx.out(policyFields(stored));
    });

  retrain
    .command('trigger')
    .description('retrain a task now (ignores the drift threshold and the cooldown)')
    .requiredOption('--task <name>', 'the task')
    .option('--reason <text>', 'why (recorded)')
    .option('--json', 'print the retrain record as JSON')
    .action(async (options: { task: string; reason?: string; json?: boolean }, command: Command) => {
      const record = await ctx.connect(command).triggerRetrain(options.task, options.reason);
      if (options.json) return ctx.printJson(record);
      ctx.out(
        `retrain ${record.id} started for task ${record.task}\nfollow it with: edgefleet retrain show ${record.id}\n`,
      );
    });

  retrain
    .command('list')
    .description('retrains, newest first')
    .option('--task <name>', 'only this task')
    .option('--json', 'print the API response as JSON')
    .action(async (options: { task?: string; json?: boolean }, command: Command) => {
      const result = await ctx.connect(command).listRetrains(options.task);
      if (options.json) return ctx.printJson(result);
      if (result.retrains.length === 0) return ctx.out('no retrains\n');
      ctx.out(
        table(
          ['ID', 'TASK', 'TRIGGER', 'STATUS', 'VERSION', 'ROLLOUT', 'CREATED'],
          result.retrains.map((r) => [
            r.id,
            r.task,
            r.trigger.kind,
            r.status,
            r.version === null ? '-' : `${r.model}@${r.version}`,
            orDash(r.rollout),
            r.createdAt,
          ]),
        ),
      );
    });

  retrain
    .command('show')
    .description('one retrain: why it fired, snapshot, run, evaluation, rollout, every step')
    .argument('<id>', 'retrain id')
    .option('--json', 'print the API response as JSON')
    .action(async (id: string, options: { json?: boolean }, command: Command) => {
      const record = await ctx.connect(command).getRetrain(id);
      if (options.json) return ctx.printJson(record);
      ctx.out(retrainDetail(record));
    });

  retrain
    .command('approve')
    .description("start the canary rollout of a retrain's winning challenger")
    .argument('<id>', 'retrain id')
    .option('--json', 'print the retrain record as JSON')
    .action(async (id: string, options: { json?: boolean }, command: Command) => {
      const record = await ctx.connect(command).approveRetrain(id);
      if (options.json) return ctx.printJson(record);
      ctx.out(
        `retrain ${record.id} approved: rollout ${record.rollout} of ${record.model}@${record.version} started\n`,
      );
    });
}

function modelDrift(m: ModelDrift, now: Date): string {
  const head = `${m.model}${m.task ? ` (task ${m.task})` : ''}: production ${orDash(m.production)}, candidate ${orDash(m.candidate)}\n`;
  const versions = table(
    ['VERSION', 'DEVICES', 'DRIFTING', 'NO DRIFT', 'TOO FEW', 'SHARE', 'PREDICTION', 'CONCEPT'],
    m.versions.map((v) => [
      String(v.version),
      String(v.devices),
      String(v.drifting),
      String(v.noDrift),
      String(v.insufficient),
      v.share === null ? '-' : `${Math.round(v.share * 100)}%`,
      String(v.predictionDrifting),
      String(v.conceptDrifting),
    ]),
  );
  const cohorts = m.cohorts
    ? table(
        ['VERSION', 'COHORT', 'DEVICES', 'DRIFTING', 'NO DRIFT', 'TOO FEW', 'SHARE'],
        m.cohorts.map((c) => [
          String(c.version),
          c.cohort,
          String(c.devices),
          String(c.drifting),
          String(c.noDrift),
          String(c.insufficient),
          c.share === null ? '-' : `${Math.round(c.share * 100)}%`,
        ]),
      )
    : '';
  const features = m.versions
    .map((v) =>
      v.features.length === 0
        ? ''
        : `features of v${v.version}: ${v.features
            .map((f) => `${f.name} ${f.drifting}/${v.devices} drifting, mean PSI ${f.meanPsi.toFixed(3)}`)
            .join('; ')}\n`,
    )
    .join('');
  const devices = table(
    ['DEVICE', 'VERSION', 'VERDICT', 'SINCE', 'SAMPLES', 'DRIFTED FEATURES', 'CAPTURE'],
    m.devices.map((d) => [
      d.deviceId,
      String(d.version),
      d.verdict + (d.conceptSince !== null ? ' + concept' : ''),
      formatAgo(new Date(d.since).toISOString(), now),
      String(d.samples),
      d.features
        .filter((f) => f.drifted)
        .map((f) => f.name)
        .join(',') || '-',
      `${Math.round(d.captureRate * 1000) / 10}%`,
    ]),
  );
  const retrain = m.retrain
    ? `latest retrain: ${m.retrain.id} ${m.retrain.status} (${m.retrain.trigger.kind}: ${m.retrain.trigger.reason})\n`
    : 'no retrain yet\n';
  return head + versions + cohorts + features + devices + retrain;
}

function policyFields(stored: StoredPolicy): string {
  const p = stored.policy;
  return fields([
    ['task', stored.task],
    ['enabled', String(p.enabled)],
    [
      'trigger',
      `${Math.round(p.deviceShare * 1000) / 10}% of devices on production drifting for ≥ ${p.forS} s`,
    ],
    ['on concept drift', p.onConcept ? 'yes' : 'no'],
    ['cooldown', `${p.cooldownS} s`],
    ['margin', String(p.margin)],
    ['mode', p.mode === 'auto' ? 'auto (canary at once)' : 'approve (wait for `retrain approve`)'],
    [
      'canary',
      `${(p.rollout.steps ?? [5, 25, 100]).join(',')}%${p.rollout.shadowFirst ? ', shadow first' : ''}`,
    ],
    ['updated', `${stored.updatedAt} by ${stored.updatedBy}`],
  ]);
}

function retrainDetail(r: RetrainRecord): string {
  const e = r.evaluation;
  return (
    fields([
      ['id', r.id],
      ['task', `${r.task} (model ${r.model})`],
      ['status', r.status],
      ['trigger', `${r.trigger.kind} by ${r.trigger.actor}: ${r.trigger.reason}`],
      ['drift since', orDash(r.trigger.driftSince)],
      ['snapshot', orDash(r.snapshot)],
      ['run', orDash(r.run)],
      ['version', r.version === null ? '-' : `${r.model}@${r.version}`],
      ['evaluation', e ? e.detail : '-'],
      ['rollout', orDash(r.rollout)],
      ['error', r.error ? `${r.error.message} (${r.error.code})` : '-'],
    ]) +
    'steps:\n' +
    r.events.map((ev) => `  ${ev.at}  ${ev.step.padEnd(17)} ${ev.message}\n`).join('')
  );
}

function share(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(text.trim());
  const value = m ? Number(m[1]) / (m[2] ? 100 : 1) : Number.NaN;
  if (!(value > 0 && value <= 1))
    throw new InvalidArgumentError(`'${text}' must be a share above 0 and at most 100% (e.g. 30% or 0.3)`);
  return value;
}

function durationOrZero(text: string): number {
  return text.trim() === '0' ? 0 : parseDuration(text);
}

function nonNegative(text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`'${text}' must be a number ≥ 0`);
  return value;
}

function positiveInt(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new InvalidArgumentError(`'${text}' must be a whole number ≥ 1`);
  return value;
}
