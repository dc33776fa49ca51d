/**
 * Everything the CLI touches outside itself, as one injectable value: output streams, exit, environment,
 * clock, sleep, HTTP and signals. `bin/edgefleet.js` gets the real ones (`realIo`); tests pass writers that
 * capture text, an `exit` that records the code and an immediate `sleep`.
 * Also the two error kinds the CLI distinguishes by exit code: usage errors (2) and failures (1).
 */
import type { FleetServerHandle } from './commands/serve.js';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is a terminal (progress bars redraw in place there; elsewhere they print lines). */
  stderrIsTTY?: boolean;
  /** Called once with the final exit code, except by `serve`, which keeps running until a signal. */
  exit(code: number): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths (and `./data/admin-token`) are resolved against. */
  cwd: string;
  fetch: typeof fetch;
  now(): Date;
  sleep(ms: number): Promise<void>;
  /** Run `handler` once on SIGINT or SIGTERM. */
  onShutdownSignal(handler: (signal: string) => void): void;
  /** How `serve` starts the fleet server (the real one is imported lazily: other commands never load it). */
  startFleetServer(config: Record<string, unknown>): Promise<FleetServerHandle>;
}

export function realIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stderrIsTTY: process.stderr.isTTY === true,
    // Exit only after stdout has drained: piped `--json` output must not be cut short.
    exit: (code) => {
      process.stdout.write('', () => process.exit(code));
    },
    env: process.env,
    cwd: process.cwd(),
    fetch: (input, init) => fetch(input, init),
    now: () => new Date(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    onShutdownSignal: (handler) => {
      let fired = false;
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.once(signal, () => {
          if (fired) return;
          fired = true;
          handler(signal);
        });
      }
    },
    startFleetServer: async (config) => {
      const { startFleetServer } = await import('../main.js');
      return startFleetServer(config);
    },
  };
}

/** Bad command-line usage (exit code 2): a malformed argument, a missing or conflicting flag. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure to report as `edgefleet: <message>` (exit code 1). */
export class CliError extends Error {
  override readonly name = 'CliError';
}
