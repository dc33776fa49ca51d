/**
 * What every command receives: the injected io, output helpers, and `connect`, which resolves the fleet URL
 * and operator token from the global options, the environment or `./data/admin-token`, in that order.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { ApiClient } from './client.js';
import { json } from './format.js';
import type { CliIo } from './io.js';
import { UsageError } from './io.js';
import { parseBaseUrl } from './parse.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export type TokenSource = '--token' | 'EDGEFLEET_TOKEN' | './data/admin-token' | 'none';

export interface GlobalOptions {
  url?: string;
  token?: string;
}

export class CliContext {
  /** Where the token of the last `connect` came from: a 401 without one gets a hint. */
  tokenSource: TokenSource = 'none';
  /** Set by `serve`: main must not exit while the server runs. */
  keepAlive = false;

  constructor(readonly io: CliIo) {}

  out(text: string): void {
    this.io.stdout(text);
  }

  /** `--json`: exactly one JSON document on stdout. */
  printJson(value: unknown): void {
    this.io.stdout(json(value));
  }

  /** An API client for the command being run (global `--url` / `--token` apply). */
  connect(command: Command): ApiClient {
    const options = command.optsWithGlobals<GlobalOptions>();
    const rawUrl = options.url ?? nonEmpty(this.io.env['EDGEFLEET_URL']) ?? DEFAULT_URL;
    let baseUrl: string;
    try {
      baseUrl = parseBaseUrl(rawUrl);
    } catch (err) {
      if (err instanceof InvalidArgumentError) {
        const from = options.url !== undefined ? '--url' : 'EDGEFLEET_URL';
        throw new UsageError(`${from}: ${err.message}`);
      }
      throw err;
    }
    const { token, source } = this.resolveToken(options.token);
    this.tokenSource = source;
    return new ApiClient({ baseUrl, token, fetch: this.io.fetch });
  }

  private resolveToken(flag: string | undefined): { token: string | undefined; source: TokenSource } {
    if (flag !== undefined) return { token: flag, source: '--token' };
    const env = nonEmpty(this.io.env['EDGEFLEET_TOKEN']);
    if (env !== undefined) return { token: env, source: 'EDGEFLEET_TOKEN' };
    try {
      const token = readFileSync(join(this.io.cwd, 'data', 'admin-token'), 'utf8').trim();
      if (token.length > 0) return { token, source: './data/admin-token' };
    } catch {
      // No local admin token: requests go out without one and the server says what it needs.
    }
    return { token: undefined, source: 'none' };
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
