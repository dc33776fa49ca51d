/**
 * `edgefleet tokens create` (operator tokens, admin only) and `edgefleet enroll-token create` (one-time
 * enrollment tokens for devices, printed with the agent command line that uses them).
 */
import { type Command, Option } from 'commander';
import type { Role } from '../client.js';
import type { CliContext } from '../context.js';
import { fields, formatTags, orDash } from '../format.js';
import { parseDuration, parseTags } from '../parse.js';

export function registerTokens(program: Command, ctx: CliContext): void {
  const tokens = program
    .command('tokens')
    .description('operator API tokens (roles viewer < operator < admin)');
  tokens
    .command('create')
    .description('create an operator token (needs an admin token); it is shown only once')
    .addOption(
      new Option('--role <role>', 'what the token may do')
        .choices(['viewer', 'operator', 'admin'])
        .makeOptionMandatory(),
    )
    .option('--name <name>', 'a name to recognise the token by in audit records')
    .option('--json', 'print the API response as JSON')
    .action(async (options: { role: Role; name?: string; json?: boolean }, command: Command) => {
      const created = await ctx.connect(command).createToken({ role: options.role, name: options.name });
      if (options.json) return ctx.printJson(created);
      ctx.out(`created ${created.role} token '${created.name}' (id ${created.id}); it is shown only once:\n`);
      ctx.out(`${created.token}\n`);
    });
}

export function registerEnrollToken(program: Command, ctx: CliContext): void {
  const enroll = program.command('enroll-token').description('one-time tokens that enroll new devices');
  enroll
    .command('create')
    .description('create an enrollment token and print the command to run on the device')
    .option('--tags <k=v,...>', 'tags every device enrolled with this token gets', parseTags)
    .option('--profile <id>', 'firmware profile for the device (e.g. raspberry-pi-5)')
    .option('--expires-in <duration>', 'how long the token is valid: 30s, 10m, 24h, 7d', parseDuration)
    .option('--name <name>', 'a name for the token')
    .option('--json', 'print the API response as JSON')
    .action(
      async (
        options: {
          tags?: Record<string, string>;
          profile?: string;
          expiresIn?: number;
          name?: string;
          json?: boolean;
        },
        command: Command,
      ) => {
        const client = ctx.connect(command);
        const created = await client.createEnrollmentToken({
          tags: options.tags ?? {},
          profile: options.profile,
          expiresInSeconds: options.expiresIn ?? parseDuration('24h'),
          name: options.name,
        });
        if (options.json) return ctx.printJson(created);
        ctx.out(
          fields([
            ['token', created.token],
            ['expires', created.expiresAt],
            ['tags', formatTags(created.tags)],
            ['profile', orDash(created.profile)],
          ]),
        );
        ctx.out(`\non the device, run (the token works once):\n`);
        ctx.out(`  edgefleet-agent enroll --server ${client.baseUrl} --token ${created.token}\n`);
      },
    );
}
