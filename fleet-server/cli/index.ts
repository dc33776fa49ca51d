/**
 * `edgefleet <noun> <verb>`: the operator CLI, and `edgefleet serve`. Every command but `serve` talks only
 * to the HTTP API (cli/client.ts). Human output is aligned tables; `--json` prints the raw API response as
 * exactly one JSON document on stdout. Errors print `edgefleet: <message>` on stderr and exit 1; usage
 * errors exit 2. All io (streams, exit, env, fetch, clock, signals) is injected, so tests run `main`
 * in-process; `bin/edgefleet.js` gets the real ones by default.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ApiError, UnreachableError } from './client.js';
import { registerAudit } from './commands/audit.js';
import { registerData } from './commands/data.js';
import { registerDevices } from './commands/devices.js';
import { registerDrift } from './commands/drift.js';
import { registerModels } from './commands/models.js';
import { registerRollouts } from './commands/rollouts.js';
import { registerServe } from './commands/serve.js';
import { registerEnrollToken, registerTokens } from './commands/tokens.js';
import { registerTrain } from './commands/train.js';
import { CliContext, DEFAULT_URL } from './context.js';
import { CliError, type CliIo, realIo, UsageError } from './io.js';

export type { CliIo } from './io.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const HELP_FOOTER = `
Connection (every command but serve):
  fleet URL    --url, else $EDGEFLEET_URL, else ${DEFAULT_URL}
  token        --token, else $EDGEFLEET_TOKEN, else the file ./data/admin-token when it exists
               (written by \`edgefleet serve\` at first start, so commands run next to it just work)

Every list and status command takes --json: the API response as one JSON document on stdout.
Exit codes: 0 ok, 1 failure (the message says why), 2 bad usage.
`;

/**
 * Run the CLI. `argv` is `process.argv`-shaped (node, script, args...). Calls `io.exit` with the exit code
 * and also returns it, except for a successful `serve`, which keeps running (returns 0 without exiting;
 * the signal handler exits).
 */
export async function main(argv: string[], overrides: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = { ...realIo(), ...overrides };
  const ctx = new CliContext(io);
  const program = buildProgram(ctx);
  const code = await run(program, argv, ctx);
  if (!(code === EXIT_OK && ctx.keepAlive)) io.exit(code);
  return code;
}

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('edgefleet')
    .description('edgefleet: deploy signed ONNX models to fleets of edge devices over MQTT')
    .version(packageVersion(), '-V, --version')
    .option('--url <url>', `fleet server base URL (default $EDGEFLEET_URL or ${DEFAULT_URL})`)
    .option('--token <token>', 'operator token (default $EDGEFLEET_TOKEN or ./data/admin-token)')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.io.stdout(text),
      writeErr: (text) => ctx.io.stderr(text),
      outputError: (text, write) => write(`edgefleet: ${text.replace(/^error: /, '')}`),
    })
    .addHelpText('after', HELP_FOOTER);
  // Settings above are copied into each subcommand as it is created: create subcommands after them.
  registerServe(program, ctx);
  registerTokens(program, ctx);
  registerEnrollToken(program, ctx);
  registerDevices(program, ctx);
  registerModels(program, ctx);
  registerRollouts(program, ctx);
  registerData(program, ctx);
  registerTrain(program, ctx);
  registerDrift(program, ctx);
  registerAudit(program, ctx);
  return program;
}

async function run(program: Command, argv: string[], ctx: CliContext): Promise<number> {
  try {
    await program.parseAsync(argv, { from: 'node' });
    return EXIT_OK;
  } catch (err) {
    return report(err, ctx);
  }
}

/** Print an error the way the user should see it and choose the exit code. */
function report(err: unknown, ctx: CliContext): number {
  const say = (message: string) => ctx.io.stderr(`edgefleet: ${message}\n`);
  if (err instanceof CommanderError) {
    // Commander has printed its own message (through outputError) or the help text already.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
    // A parser's InvalidArgumentError thrown from inside an action (not via an option) was not printed.
    if (err instanceof InvalidArgumentError) say(err.message);
    return EXIT_USAGE;
  }
  if (err instanceof UsageError) {
    say(err.message);
    return EXIT_USAGE;
  }
  if (err instanceof ApiError) {
    const hint =
      err.status === 401 && ctx.tokenSource === 'none'
        ? ' — no token was given: pass --token, set EDGEFLEET_TOKEN, or run where ./data/admin-token exists'
        : '';
    say(`${err.message}${hint}`);
    return EXIT_FAILURE;
  }
  if (err instanceof UnreachableError || err instanceof CliError) {
    say(err.message);
    return EXIT_FAILURE;
  }
  say(err instanceof Error ? err.message : String(err));
  return EXIT_FAILURE;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
