/**
 * The fleet server's one configuration schema: every key with its type, default and a line of doc.
 * Defaults are resolved once, here; the rest of the server receives a complete `FleetConfig`.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const REPO_PROFILES = fileURLToPath(new URL('../firmware-profiles', import.meta.url));

export const FleetConfigSchema = z.object({
  /** Where LevelDB, artifacts, keys and the admin token live. */
  dataDir: z.string().default('./data'),
  /** HTTP API and console bind address. */
  httpHost: z.string().default('0.0.0.0'),
  /** HTTP API port (0 picks a free port). */
  httpPort: z.number().int().min(0).max(65535).default(8080),
  /** Embedded MQTT broker bind address. */
  mqttHost: z.string().default('0.0.0.0'),
  /** Embedded MQTT broker port (0 picks a free port). */
  mqttPort: z.number().int().min(0).max(65535).default(1883),
  /** Base URL devices use for the HTTP API (artifact downloads); derived from host and port when unset. */
  publicUrl: z.string().optional(),
  /** MQTT URL handed to devices at enrollment; derived from host and port when unset. */
  publicMqttUrl: z.string().optional(),
  /** Directory of firmware-profile JSON files. */
  profilesDir: z.string().default(REPO_PROFILES),
  /** Largest model artifact accepted by `models push`, in bytes. */
  maxModelBytes: z
    .number()
    .int()
    .positive()
    .default(512 * 1024 * 1024),
  /** Default validity of a signed manifest, in days. */
  manifestValidityDays: z.number().positive().default(365),
  /** Largest MQTT message the server parses, in bytes. */
  maxMessageBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /** Largest sample batch a device may send, after decompression, bytes. */
  maxSampleBatchBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  /** pino log level. */
  /** How often retrain policies are checked besides after drift reports, ms. */
  retrainCheckMs: z.number().int().min(50).default(5_000),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type FleetConfigInput = z.input<typeof FleetConfigSchema>;
export type FleetConfig = z.infer<typeof FleetConfigSchema> & { dataDir: string; profilesDir: string };

export function resolveConfig(input: FleetConfigInput): FleetConfig {
  const config = FleetConfigSchema.parse(input);
  return { ...config, dataDir: resolve(config.dataDir), profilesDir: resolve(config.profilesDir) };
}

/** An address a client can reach: a wildcard bind address becomes loopback. */
export function reachableHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}
