/**
 * `edgefleet-agent enroll|run|doctor`. Thin: parses arguments, calls enroll(), startAgent() or runDoctor(),
 * prints the lines operators and tests rely on (`enrolled device …`, `edgefleet-agent ready device=… api=…`).
 */
import { Command, InvalidArgumentError } from 'commander';
import { EdgefleetError } from '../shared/errors.js';
import { UPDATE_STATES, type UpdateState } from '../shared/protocol/messages.js';
import { formatReport } from './doctor-checks.js';
import { enroll } from './enroll.js';
import { startAgent } from './main.js';
import { versionLine } from './version.js';

function rate(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`'${value}' is not a share between 0 and 1`);
  return n;
}

function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`'${value}' is not a non-negative integer`);
  return n;
}

/** `site=lab,ring=canary` → { site: 'lab', ring: 'canary' } (the fleet validates keys and values). */
function tagList(value: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`'${pair}' is not key=value`);
    tags[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return tags;
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('edgefleet-agent').version(versionLine()).description('edgefleet device agent');

  program
    .command('enroll')
    .description('enroll this device with a fleet server using a one-time token')
    .requiredOption('--server <url>', 'fleet server URL, e.g. http://fleet:8080')
    .requiredOption('--token <token>', 'enrollment token from `edgefleet enroll-token create`')
    .option('--data-dir <dir>', 'agent data directory', './edgefleet-agent-data')
    .option('--profile <id>', 'firmware profile (defaults to the token profile)')
    .option('--tags <k=v,...>', "tags to add to the device (the token's tags win on a clash)", tagList)
    .action(async (opts: Parameters<typeof enroll>[0]) => {
      const result = await enroll(opts);
      process.stdout.write(`enrolled device ${result.deviceId} (profile ${result.profile.id})\n`);
    });

  program
    .command('doctor')
    .description(
      'check this device for the agent: arch, glibc, profile, execution providers, disk, clock, fleet',
    )
    .option('--data-dir <dir>', 'agent data directory', './edgefleet-agent-data')
    .option('--server <url>', 'fleet server to check against (default: the one the device enrolled with)')
    .option('--json', 'print the results as JSON')
    .action(async (opts: { dataDir: string; server?: string; json?: boolean }) => {
      // Imported when doctor runs: they load ONNX Runtime's native library (see version.ts on why that matters).
      const [{ runDoctor }, { OrtRuntime }] = await Promise.all([
        import('./doctor.js'),
        import('./runtime/ort.js'),
      ]);
      const result = await runDoctor(opts, {
        runtime: (scratchDir) => new OrtRuntime({ dataDir: scratchDir }),
      });
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : formatReport(result));
      process.exitCode = result.ok ? 0 : 1;
    });

  program
    .command('run')
    .description('run the agent: updates, local inference API, telemetry')
    .option('--data-dir <dir>', 'agent data directory', './edgefleet-agent-data')
    .option('--api-host <host>', 'inference API bind address', '127.0.0.1')
    .option('--api-port <port>', 'inference API port (0: any free port)', int, 9090)
    .option('--telemetry-interval-ms <ms>', 'telemetry period', int, 5_000)
    .option('--sample-rate <share>', 'share of requests captured for the data pool (0..1)', rate, 0.01)
    .option('--feedback-window-ms <ms>', 'how long a capture waits for ground truth', int, 600_000)
    .option('--sample-max-age-ms <ms>', 'longest a captured sample waits for its batch', int, 5_000)
    .option('--no-drift', 'turn drift monitoring off')
    .option('--drift-window-samples <rows>', 'rows that close a drift window', int, 500)
    .option('--drift-window-ms <ms>', 'age that closes a drift window on a quiet device', int, 60_000)
    .option(
      '--drift-report-interval-ms <ms>',
      'drift report period (reports also go out at verdict changes)',
      int,
      30_000,
    )
    .option('--drift-sample-rate <share>', 'capture share while drift is detected (0..1)', rate, 0.25)
    .action(
      async (opts: {
        dataDir: string;
        apiHost: string;
        apiPort: number;
        telemetryIntervalMs: number;
        sampleRate: number;
        feedbackWindowMs: number;
        sampleMaxAgeMs: number;
        drift: boolean;
        driftWindowSamples: number;
        driftWindowMs: number;
        driftReportIntervalMs: number;
        driftSampleRate: number;
      }) => {
        const hangAt = process.env.EDGEFLEET_FAULT_HANG_AT;
        if (hangAt !== undefined && !(UPDATE_STATES as readonly string[]).includes(hangAt)) {
          throw new EdgefleetError(
            'bad_fault',
            `EDGEFLEET_FAULT_HANG_AT must be one of ${UPDATE_STATES.join(', ')}`,
          );
        }
        const { sampleMaxAgeMs, drift, ...rest } = opts;
        const agent = await startAgent(
          { ...rest, sampleBatchMaxAgeMs: sampleMaxAgeMs, driftMonitoring: drift },
          { hangAt: hangAt as UpdateState | undefined },
        );
        process.stdout.write(`edgefleet-agent ready device=${agent.deviceId} api=${agent.apiUrl}\n`);
        const stop = () => {
          agent.close().then(
            () => process.exit(0),
            () => process.exit(1),
          );
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      },
    );

  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.stderr.write(`edgefleet-agent: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
