/**
 * `edgefleet-agent enroll|run`. Thin: parses arguments, calls enroll() or startAgent(), prints the lines
 * operators and tests rely on (`enrolled device …`, `edgefleet-agent ready device=… api=…`).
 */
import { Command, InvalidArgumentError } from 'commander';
import { EdgefleetError } from '../shared/errors.js';
import { UPDATE_STATES, type UpdateState } from '../shared/protocol/messages.js';
import { AGENT_VERSION } from './config.js';
import { enroll } from './enroll.js';
import { startAgent } from './main.js';

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

export async function main(argv: string[]): Promise<void> {
  const program = new Command('edgefleet-agent').version(AGENT_VERSION).description('edgefleet device agent');

  program
    .command('enroll')
    .description('enroll this device with a fleet server using a one-time token')
    .requiredOption('--server <url>', 'fleet server URL, e.g. http://fleet:8080')
    .requiredOption('--token <token>', 'enrollment token from `edgefleet enroll-token create`')
    .option('--data-dir <dir>', 'agent data directory', './edgefleet-agent-data')
    .option('--profile <id>', 'firmware profile (defaults to the token profile)')
    .action(async (opts: { server: string; token: string; dataDir: string; profile?: string }) => {
      const result = await enroll(opts);
      process.stdout.write(`enrolled device ${result.deviceId} (profile ${result.profile.id})\n`);
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
