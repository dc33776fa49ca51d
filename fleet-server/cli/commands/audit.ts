/**
 * `edgefleet audit list [--actor A] [--action X] [--limit N] [--json]`: the audit trail, newest first.
 * `edgefleet audit verify`: walks the hash chain; exits 1 naming the first entry that was edited, removed or
 * moved.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { orDash, table } from '../format.js';
import { CliError } from '../io.js';
import { parsePositiveNumber } from '../parse.js';

export function registerAudit(program: Command, ctx: CliContext): void {
  const audit = program.command('audit').description('the hash-chained audit trail of every change');
  audit
    .command('list')
    .description('audit entries, newest first')
    .option('--actor <name>', 'only this actor (token name, or system:rollouts, system:retrain)')
    .option('--action <text>', 'only actions containing this text (e.g. rollouts, rollout.aborted)')
    .option('--limit <n>', 'at most this many (default 100)', parsePositiveNumber)
    .option('--json', 'print the API response as JSON')
    .action(
      async (
        options: { actor?: string; action?: string; limit?: number; json?: boolean },
        command: Command,
      ) => {
        const result = await ctx.connect(command).listAudit(options);
        if (options.json) return ctx.printJson(result);
        if (result.entries.length === 0) return ctx.out('no audit entries\n');
        ctx.out(
          table(
            ['SEQ', 'AT', 'ACTOR', 'ROLE', 'ACTION', 'STATUS', 'DETAIL'],
            result.entries.map((e) => [
              String(e.seq),
              e.at,
              e.actor,
              orDash(e.role),
              e.action,
              orDash(e.status),
              e.detail ? e.detail.slice(0, 80) : '-',
            ]),
          ),
        );
      },
    );
  audit
    .command('verify')
    .description('check the hash chain: every entry unedited, none removed, none moved')
    .option('--json', 'print the result as JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      const result = await ctx.connect(command).verifyAudit();
      if (options.json) ctx.printJson(result);
      if (!result.ok) {
        const bad = result.firstBad;
        throw new CliError(
          `audit log does not verify: entry ${bad.seq} (key ${bad.key}) was ${bad.problem} — ${bad.detail}`,
        );
      }
      if (!options.json)
        ctx.out(
          `audit log verifies: ${result.entries} ${result.entries === 1 ? 'entry' : 'entries'}, head ${result.head.slice(0, 16)}…\n`,
        );
    });
}
