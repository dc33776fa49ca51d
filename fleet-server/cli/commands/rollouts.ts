/**
 * `edgefleet rollout create|status|list`. `status --watch` polls once a second until the phase is terminal,
 * printing only what changed (phase, per-device states); with `--json` it prints just the final rollout,
 * so stdout still holds exactly one JSON document.
 */
import { type Command, Option } from 'commander';
import type { Rollout, RolloutPhase } from '../client.js';
import type { CliContext } from '../context.js';
import { cell, formatModelRef, formatTags, orDash, table } from '../format.js';
import { UsageError } from '../io.js';
import { parseList, parseModelRef, parseTags } from '../parse.js';

const TERMINAL_PHASES: readonly RolloutPhase[] = ['succeeded', 'failed'];
export const WATCH_INTERVAL_MS = 1000;

export function isTerminalPhase(phase: string): boolean {
  return (TERMINAL_PHASES as readonly string[]).includes(phase);
}

export function registerRollouts(program: Command, ctx: CliContext): void {
  const rollout = program.command('rollout').description('roll model versions out to devices (OTA)');

  rollout
    .command('create')
    .description('roll a model version out to devices chosen by id or by tags')
    .requiredOption('--model <name@version>', 'model version to install, e.g. demo@3', parseModelRef)
    .option('--devices <ids>', 'target these device ids (a,b,c)', parseList)
    .option('--tags <k=v,...>', 'target every device with all these tags', parseTags)
    .addOption(
      new Option('--strategy <strategy>', 'how devices are updated')
        .choices(['all-at-once'])
        .default('all-at-once'),
    )
    .option('--json', 'print the API response as JSON')
    .action(
      async (
        options: {
          model: { name: string; version: number };
          devices?: string[];
          tags?: Record<string, string>;
          strategy: string;
          json?: boolean;
        },
        command: Command,
      ) => {
        if ((options.devices === undefined) === (options.tags === undefined)) {
          throw new UsageError('give exactly one of --devices or --tags');
        }
        const targets =
          options.devices !== undefined ? { devices: options.devices } : { tags: options.tags! };
        const created = await ctx
          .connect(command)
          .createRollout({ model: options.model, targets, strategy: options.strategy });
        if (options.json) return ctx.printJson(created);
        ctx.out(
          `rollout ${created.id} created: ${formatModelRef(created.model)} to ${created.summary.total} device(s), phase ${created.phase}\n`,
        );
        ctx.out(`follow it with: edgefleet rollout status ${created.id} --watch\n`);
      },
    );

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
  return `total ${summary.total}, pending ${summary.pending}, in progress ${summary.inProgress}, active ${summary.active}, failed ${summary.failed}`;
}

export function formatReason(reason: Rollout['devices'][number]['reason']): string {
  return reason ? cell(`${reason.code}: ${reason.message}`) : '-';
}

export function rolloutDetail(r: Rollout): string {
  let text = `rollout ${r.id}  model ${formatModelRef(r.model)}  strategy ${r.strategy}  created ${r.createdAt} by ${r.createdBy}\n`;
  text += `phase ${r.phase}  (${formatSummary(r.summary)})\n`;
  if (r.devices.length === 0) return text;
  text += `\n${table(
    ['DEVICE', 'STATE', 'PROVIDER', 'REASON'],
    r.devices.map((d) => [d.deviceId, d.state, orDash(d.executionProvider), formatReason(d.reason)]),
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
  if (before.phase !== after.phase) {
    lines.push(`${time}  phase ${before.phase} -> ${after.phase}  (${formatSummary(after.summary)})`);
  }
  return lines.map((l) => `${l}\n`).join('');
}
