/**
 * `edgefleet rollout create|status|list`. `status --watch` polls once a second until the phase is terminal,
 * printing only what changed (phase, per-device states); with `--json` it prints just the final rollout,
 * so stdout still holds exactly one JSON document.
 */
import { type Command, Option } from 'commander';
import { describeStep } from '../../../shared/rollout-steps.js';
import type { ModelRef, Rollout, RolloutPhase } from '../client.js';
import type { CliContext } from '../context.js';
import { cell, formatModelRef, formatTags, indent, orDash, table } from '../format.js';
import { UsageError } from '../io.js';
import {
  parseDuration,
  parseList,
  parseModelRef,
  parsePercents,
  parsePositiveNumber,
  parseTags,
} from '../parse.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const TERMINAL_PHASES: readonly RolloutPhase[] = ['succeeded', 'failed', 'rolled_back'];
export const WATCH_INTERVAL_MS = 1000;

export function isTerminalPhase(phase: string): boolean {
  return (TERMINAL_PHASES as readonly string[]).includes(phase);
}

export function registerRollouts(program: Command, ctx: CliContext): void {
  const rollout = program.command('rollout').description('roll model versions out to devices (OTA)');

  rollout
    .command('create')
    .description('roll a model version out to devices chosen by id or by tags, all at once or progressively')
    .requiredOption(
      '--model <name@version>',
      'model version to install, e.g. demo@3 or demo@candidate',
      parseModelRef,
    )
    .option('--devices <ids>', 'target these device ids (a,b,c)', parseList)
    .option('--tags <k=v,...>', 'target every device with all these tags', parseTags)
    .addOption(
      new Option('--strategy <strategy>', 'how devices are updated')
        .choices(['all-at-once', 'canary', 'blue-green'])
        .default('all-at-once'),
    )
    .option('--steps <percents>', 'canary percentages, ending at 100 (default 5,25,100)', parsePercents)
    .option(
      '--bake <duration>',
      'canary: wait this long at each step before its analysis (e.g. 10m)',
      parseDuration,
    )
    .option(
      '--window <duration>',
      'canary analysis window, or blue-green shadow duration (default 60s)',
      parseDuration,
    )
    .option(
      '--gate <expr>',
      "a gate replacing the defaults, repeatable: 'p95_latency_ratio<=1.2', 'error_rate<=0.01/100' (value/min samples)",
      collect,
    )
    .option('--no-shadow-first', 'canary: let the first cohort serve at once, without shadowing first')
    .option(
      '--shadow-percent <n>',
      'blue-green: share of live requests mirrored to the candidate',
      parsePositiveNumber,
    )
    .option(
      '--min-agreement <x>',
      'blue-green: shadow agreement needed to switch (default 0.95)',
      parsePositiveNumber,
    )
    .option(
      '--device-timeout <duration>',
      'how long a device may take to install (default 15m)',
      parseDuration,
    )
    .addOption(
      new Option('--on-device-timeout <what>', 'a device past the timeout counts as').choices([
        'fail',
        'skip',
      ]),
    )
    .option('--json', 'print the API response as JSON')
    .action(
      async (
        options: {
          model: ModelRef;
          devices?: string[];
          tags?: Record<string, string>;
          strategy: 'all-at-once' | 'canary' | 'blue-green';
          steps?: number[];
          bake?: number;
          window?: number;
          gate?: string[];
          shadowPercent?: number;
          shadowFirst: boolean;
          minAgreement?: number;
          deviceTimeout?: number;
          onDeviceTimeout?: 'fail' | 'skip';
          json?: boolean;
        },
        command: Command,
      ) => {
        if ((options.devices === undefined) === (options.tags === undefined)) {
          throw new UsageError('give exactly one of --devices or --tags');
        }
        if (options.strategy !== 'canary' && (options.steps || options.bake)) {
          throw new UsageError('--steps and --bake are for --strategy canary');
        }
        if (options.strategy === 'all-at-once' && (options.shadowPercent || options.minAgreement)) {
          throw new UsageError(
            '--shadow-percent and --min-agreement are for --strategy canary or blue-green',
          );
        }
        if (options.strategy !== 'canary' && !options.shadowFirst) {
          throw new UsageError('--no-shadow-first is for --strategy canary');
        }
        const targets =
          options.devices !== undefined ? { devices: options.devices } : { tags: options.tags! };
        const created = await ctx.connect(command).createRollout({
          model: options.model,
          targets,
          strategy: options.strategy,
          steps: options.steps,
          bakeS: options.bake,
          windowS: options.window,
          gates: options.gate,
          shadowPercent: options.shadowPercent,
          shadowFirst: options.shadowFirst ? undefined : false,
          minAgreement: options.minAgreement,
          deviceTimeoutS: options.deviceTimeout,
          onDeviceTimeout: options.onDeviceTimeout,
        });
        if (options.json) return ctx.printJson(created);
        ctx.out(
          `rollout ${created.id} created: ${formatModelRef(created.model)} to ${created.summary.total} device(s), ${created.spec.strategy}, phase ${created.phase}\n`,
        );
        ctx.out(`steps: ${created.spec.steps.map(describeStep).join(' -> ')}\n`);
        ctx.out(`follow it with: edgefleet rollout status ${created.id} --watch\n`);
      },
    );

  const actions = [
    ['pause', 'stop moving to new cohorts (devices already updated keep the new version)'],
    ['resume', 'continue a paused rollout (past an inconclusive gate or a pause step)'],
    ['abort', 'stop and roll back every device that got the new version'],
    ['rollback', 'roll every device of the rollout back to its previous model, also after success'],
    ['promote', 'skip the remaining steps and gates: every target gets the new version now (admin)'],
  ] as const;
  for (const [action, description] of actions) {
    const sub = rollout.command(action).description(description).argument('<id>', 'rollout id');
    if (action !== 'resume' && action !== 'promote')
      sub.option('--reason <text>', 'recorded with the action');
    sub
      .option('--json', 'print the API response as JSON')
      .action(async (id: string, options: { reason?: string; json?: boolean }, command: Command) => {
        const result = await ctx.connect(command).rolloutAction(id, action, options.reason);
        if (options.json) return ctx.printJson(result);
        ctx.out(`rollout ${result.id}: ${action} accepted, phase ${result.phase}\n`);
      });
  }

  rollout
    .command('status')
    .description('phase, counts and per-device state of a rollout')
    .argument('<id>', 'rollout id')
    .option('--watch', 'poll every second until the rollout succeeds or fails, printing changes')
    .option('--json', 'print the API response as JSON (with --watch: the final state only)')
    .action(async (id: string, options: { watch?: boolean; json?: boolean }, command: Command) => {
      const client = ctx.connect(command);
      let current = await client.getRollout(id);
      if (options.watch && !isTerminalPhase(current.phase)) {
        if (!options.json) ctx.out(rolloutDetail(current));
        while (!isTerminalPhase(current.phase)) {
          await ctx.io.sleep(WATCH_INTERVAL_MS);
          const next = await client.getRollout(id);
          if (!options.json) ctx.out(rolloutChanges(current, next, ctx.io.now()));
          current = next;
        }
        if (!options.json) ctx.out('\n');
      }
      if (options.json) return ctx.printJson(current);
      ctx.out(rolloutDetail(current));
    });

  rollout
    .command('list')
    .description('rollouts, newest first')
    .option('--json', 'print the API response as JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      const result = await ctx.connect(command).listRollouts();
      if (options.json) return ctx.printJson(result);
      if (result.rollouts.length === 0) return ctx.out('no rollouts\n');
      ctx.out(
        table(
          ['ID', 'MODEL', 'PHASE', 'ACTIVE', 'FAILED', 'TARGETS', 'CREATED'],
          result.rollouts.map((r) => [
            r.id,
            formatModelRef(r.model),
            r.phase,
            `${r.summary.active}/${r.summary.total}`,
            String(r.summary.failed),
            formatTargets(r.targets),
            r.createdAt,
          ]),
        ),
      );
    });
}

export function formatTargets(targets: Rollout['targets']): string {
  const parts: string[] = [];
  if (targets.devices?.length) parts.push(`devices ${targets.devices.join(',')}`);
  if (targets.tags && Object.keys(targets.tags).length > 0) parts.push(`tags ${formatTags(targets.tags)}`);
  return cell(parts.join('; ') || '-', 60);
}

export function formatSummary(summary: Rollout['summary']): string {
  const optional = (
    [
      ['waiting', summary.waiting],
      ['shadowing', summary.shadowing],
      ['rolled back', summary.rolledBack],
      ['skipped', summary.skipped],
    ] as const
  )
    .filter(([, n]) => n > 0)
    .map(([what, n]) => `, ${what} ${n}`)
    .join('');
  return `total ${summary.total}, pending ${summary.pending}, in progress ${summary.inProgress}, active ${summary.active}, failed ${summary.failed}${optional}`;
}

export function formatReason(reason: Rollout['devices'][number]['reason']): string {
  return reason ? cell(`${reason.code}: ${reason.message}`) : '-';
}

/** The actions the rollout's phase allows, as the server serves them; admin-only ones say so. */
export function formatActions(actions: Rollout['actions']): string {
  const allowed = actions.filter((a) => a.allowed);
  if (allowed.length === 0) return 'none in this phase';
  return allowed.map((a) => (a.role === 'admin' ? `${a.action} (admin)` : a.action)).join(', ');
}

export function rolloutDetail(r: Rollout): string {
  const steps = r.spec.steps;
  let text = `rollout ${r.id}  model ${formatModelRef(r.model)}  strategy ${r.spec.strategy}  created ${r.createdAt} by ${r.createdBy}\n`;
  text += `phase ${r.phase}  at ${r.percent}%  (${formatSummary(r.summary)})\n`;
  text += `actions: ${formatActions(r.actions)}\n`;
  if (steps.length > 1) {
    text += `steps: ${steps
      .map((step, i) => `${i === r.status.step ? '>' : i < r.status.step ? '✓' : ' '}${describeStep(step)}`)
      .join('  ')}\n`;
  }
  if (r.status.pause)
    text += `paused: ${r.status.pause.reason.message} (${r.status.pause.kind}, ${r.status.pause.at})\n`;
  if (r.status.abort) {
    text += `aborted by ${r.status.abort.by}: ${r.status.abort.reason.code}: ${r.status.abort.reason.message}\n`;
  }
  const latest = r.status.analysis?.measurements.at(-1);
  if (latest) {
    text += `\ngates at ${latest.at} (${latest.verdict}):\n${indent(
      table(
        ['GATE', 'VALUE', 'THRESHOLD', 'SAMPLES', 'VERDICT'],
        latest.gates.map((g) => [
          g.metric,
          g.value === null ? '-' : String(Math.round(g.value * 10_000) / 10_000),
          `${g.direction} ${g.threshold}`,
          `${g.samples}/${g.minSamples}`,
          g.verdict,
        ]),
      ),
    )}`;
  }
  if (r.devices.length === 0) return text;
  // Which variant each device installs, when that says something: not every device on `default`.
  const variants = r.devices.some((d) => d.variant !== undefined && d.variant !== 'default');
  text += `\n${table(
    ['DEVICE', ...(variants ? ['VARIANT'] : []), 'STATE', 'PROVIDER', 'REASON'],
    r.devices.map((d) => [
      d.deviceId,
      ...(variants ? [orDash(d.variant)] : []),
      d.state,
      orDash(d.executionProvider),
      formatReason(d.reason),
    ]),
  )}`;
  return text;
}

/** One line per change between two polls: device state moves, then the phase. Empty when nothing changed. */
export function rolloutChanges(before: Rollout, after: Rollout, now: Date): string {
  const time = now.toISOString().slice(11, 19);
  const previous = new Map(before.devices.map((d) => [d.deviceId, d]));
  const lines: string[] = [];
  for (const d of after.devices) {
    const was = previous.get(d.deviceId);
    if (was && was.state === d.state) continue;
    const provider = d.executionProvider ? ` on ${d.executionProvider}` : '';
    const reason = d.reason && d.state === 'failed' ? `: ${formatReason(d.reason)}` : '';
    lines.push(`${time}  ${d.deviceId}  ${was ? was.state : '(new)'} -> ${d.state}${provider}${reason}`);
  }
  if (before.status.step !== after.status.step && after.status.step < after.spec.steps.length) {
    lines.push(
      `${time}  step ${after.status.step + 1}/${after.spec.steps.length}: ${describeStep(after.spec.steps[after.status.step]!)}`,
    );
  }
  if (before.phase !== after.phase) {
    lines.push(`${time}  phase ${before.phase} -> ${after.phase}  (${formatSummary(after.summary)})`);
  }
  return lines.map((l) => `${l}\n`).join('');
}
