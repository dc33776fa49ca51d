/**
 * `edgefleet serve`: start the fleet server in this process and keep it running until SIGINT/SIGTERM,
 * then close it cleanly (exit 0; exit 1 if closing fails). Only the flags given are passed on, so the
 * server's own config schema stays the one place defaults live (except the data dir, printed here).
 */
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { FleetConfigInput } from '../../config.js';
import type { FleetServer } from '../../main.js';
import type { CliContext } from '../context.js';
import { parsePort } from '../parse.js';

/** What `serve` needs from a started fleet server. */
export type FleetServerHandle = Pick<FleetServer, 'httpUrl' | 'mqttUrl' | 'close'> & {
  config?: { dataDir: string };
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

interface ServeOptions {
  dataDir: string;
  httpHost?: string;
  httpPort?: number;
  mqttHost?: string;
  mqttPort?: number;
  profilesDir?: string;
  publicUrl?: string;
  publicMqttUrl?: string;
  logLevel?: (typeof LOG_LEVELS)[number];
}

export function registerServe(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the fleet server: HTTP API, embedded MQTT broker, LevelDB store')
    .option('--data-dir <dir>', 'data directory (database, artifacts, keys, admin-token)', './data')
    .option('--http-port <port>', 'HTTP API port, 0 for a free one (default 8080)', parsePort)
    .option('--mqtt-port <port>', 'MQTT broker port, 0 for a free one (default 1883)', parsePort)
    .option('--http-host <host>', 'HTTP bind address (default 0.0.0.0)')
    .option('--mqtt-host <host>', 'MQTT bind address (default 0.0.0.0)')
    .option('--profiles-dir <dir>', 'directory of firmware-profile JSON files (default: the bundled ones)')
    .option('--public-url <url>', 'HTTP base URL devices use (default: derived from host and port)')
    .option('--public-mqtt-url <url>', 'MQTT URL handed to devices at enrollment (default: derived)')
    .addOption(new Option('--log-level <level>', 'log level (default info)').choices(LOG_LEVELS))
    .action(async (options: ServeOptions) => {
      const config: FleetConfigInput = { dataDir: resolve(ctx.io.cwd, options.dataDir) };
      if (options.httpHost !== undefined) config.httpHost = options.httpHost;
      if (options.httpPort !== undefined) config.httpPort = options.httpPort;
      if (options.mqttHost !== undefined) config.mqttHost = options.mqttHost;
      if (options.mqttPort !== undefined) config.mqttPort = options.mqttPort;
      if (options.profilesDir !== undefined) config.profilesDir = resolve(ctx.io.cwd, options.profilesDir);
      if (options.publicUrl !== undefined) config.publicUrl = options.publicUrl;
      if (options.publicMqttUrl !== undefined) config.publicMqttUrl = options.publicMqttUrl;
      if (options.logLevel !== undefined) config.logLevel = options.logLevel;

      const server = await ctx.io.startFleetServer(config);
      const dataDir = server.config?.dataDir ?? config.dataDir;
      ctx.out(`edgefleet fleet server: http=${server.httpUrl} mqtt=${server.mqttUrl} data=${dataDir}\n`);
      ctx.keepAlive = true;
      ctx.io.onShutdownSignal((signal) => {
        ctx.io.stderr(`edgefleet: ${signal}: closing the fleet server\n`);
        server.close().then(
          () => ctx.io.exit(0),
          (err: unknown) => {
            ctx.io.stderr(`edgefleet: closing failed: ${err instanceof Error ? err.message : String(err)}\n`);
            ctx.io.exit(1);
          },
        );
      });
    });
}
