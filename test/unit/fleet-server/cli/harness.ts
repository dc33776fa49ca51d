/**
 * Test harness for the CLI: a small real HTTP server (node:http) that answers with canned API bodies and
 * records every request, and `runCli`, which runs `main` in-process with captured stdout/stderr, a
 * recorded exit code, an empty environment and an empty working directory (so no real token leaks in).
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CliIo, main } from '../../../../fleet-server/cli/index.js';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface Canned {
  status?: number;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent verbatim (for non-JSON bodies). */
  text?: string;
  contentType?: string;
}

export type Handler = Canned | ((req: RecordedRequest) => Canned);

export interface FakeApi {
  url: string;
  requests: RecordedRequest[];
  /** Routes by `METHOD /path` (no query). Unknown routes answer 404 like the real server. */
  routes: Map<string, Handler>;
  on(route: string, handler: Handler): void;
  close(): Promise<void>;
}

export async function startFakeApi(routes: Record<string, Handler> = {}): Promise<FakeApi> {
  const requests: RecordedRequest[] = [];
  const table = new Map(Object.entries(routes));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      requests.push(recorded);
      const handler = table.get(`${recorded.method} ${recorded.path}`);
      const canned: Canned = handler
        ? typeof handler === 'function'
          ? handler(recorded)
          : handler
        : {
            status: 404,
            json: {
              error: { code: 'not_found', message: `no route for ${recorded.method} ${recorded.path}` },
            },
          };
      const body = canned.text ?? JSON.stringify(canned.json ?? null);
      res.writeHead(canned.status ?? 200, {
        'content-type': canned.contentType ?? (canned.text !== undefined ? 'text/plain' : 'application/json'),
      });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    routes: table,
    on: (route, handler) => table.set(route, handler),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Every exit code `main` asked for (exactly one for commands that finish). */
  exits: number[];
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  io?: Partial<CliIo>;
}

/** Run `edgefleet <args>` in-process. */
export async function runCli(args: string[], options: RunOptions = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const exits: number[] = [];
  const code = await main(['node', 'edgefleet', ...args], {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    exit: (c) => {
      exits.push(c);
    },
    env: options.env ?? {},
    cwd: options.cwd ?? emptyDir(),
    sleep: async () => {},
    now: () => new Date('2026-01-01T12:00:00.000Z'),
    onShutdownSignal: () => {
      throw new Error('only serve registers signal handlers');
    },
    startFleetServer: () => {
      throw new Error('only serve starts a fleet server');
    },
    ...options.io,
  });
  return { code, stdout, stderr, exits };
}

export function emptyDir(): string {
  return mkdtempSync(join(tmpdir(), 'edgefleet-cli-'));
}

/** The request the CLI made, failing with what was seen when there was none. */
export function only(api: FakeApi): RecordedRequest {
  if (api.requests.length !== 1) {
    throw new Error(
      `expected exactly one request, got ${api.requests.length}: ${api.requests.map((r) => `${r.method} ${r.path}`).join(', ')}`,
    );
  }
  return api.requests[0]!;
}

export function jsonBody(req: RecordedRequest): any {
  return JSON.parse(req.body.toString('utf8'));
}
