/**
 * A real fleet server for end-to-end tests: LevelDB and artifacts in a temp dir, embedded broker and HTTP
 * API on ephemeral loopback ports, plus a small typed client for the API calls tests make.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FleetConfigInput } from '../../fleet-server/config.js';
import { type FleetServer, startFleetServer } from '../../fleet-server/main.js';
import { waitFor } from './wait.js';

export const REPO_PROFILES = fileURLToPath(new URL('../../firmware-profiles', import.meta.url));

export interface TestFleet {
  fleet: FleetServer;
  dir: string;
  api: Api;
  /**
   * Stop the fleet server and start it again on the same data dir and ports (devices keep their URLs);
   * `whileDown` runs in between.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/** Start a fleet server whose profile directory holds the repo's profiles plus any extra test profiles. */
export async function startTestFleet(
  extraProfiles: Record<string, unknown>[] = [],
  overrides: FleetConfigInput = {},
): Promise<TestFleet> {
  const dir = await mkdtemp(join(tmpdir(), 'edgefleet-e2e-'));
  const profilesDir = join(dir, 'profiles');
  await cp(REPO_PROFILES, profilesDir, { recursive: true });
  for (const profile of extraProfiles) {
    await writeFile(join(profilesDir, `${(profile as { id: string }).id}.json`), JSON.stringify(profile));
  }
  const config = {
    dataDir: join(dir, 'fleet'),
    httpHost: '127.0.0.1',
    httpPort: 0,
    mqttHost: '127.0.0.1',
    mqttPort: 0,
    profilesDir,
    logLevel: 'warn' as const,
    ...overrides,
  };
  const env: TestFleet = {
    fleet: await startFleetServer(config),
    dir,
    api: undefined as unknown as Api,
    async restart(whileDown) {
      const httpPort = Number(new URL(env.fleet.httpUrl).port);
      const mqttPort = Number(new URL(env.fleet.mqttUrl).port);
      await env.fleet.close();
      await whileDown?.();
      env.fleet = await startFleetServer({ ...config, httpPort, mqttPort });
    },
    async close() {
      await env.fleet.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  env.api = new Api(env.fleet.httpUrl, env.fleet.adminToken);
  return env;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: any,
  ) {
    super(`HTTP ${status}: ${JSON.stringify(body)}`);
  }
}

export class Api {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<any> {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${this.token}`, ...headers } };
    if (body instanceof Uint8Array) {
      init.body = body;
      (init.headers as Record<string, string>)['content-type'] = 'application/octet-stream';
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    const res = await fetch(`${this.baseUrl}${path}`, init);
    const text = await res.text();
    const parsed = text ? JSON.parse(text) : null;
    if (!res.ok) throw new ApiError(res.status, parsed);
    return parsed;
  }

  enrollmentToken(
    options: { tags?: Record<string, string>; profile?: string } = {},
  ): Promise<{ token: string }> {
    return this.request('POST', '/api/v1/enrollment-tokens', options);
  }

  pushModel(
    name: string,
    bytes: Uint8Array,
  ): Promise<{ name: string; version: number; manifest: any; artifact: any }> {
    return this.request('POST', `/api/v1/models/${name}/versions`, bytes);
  }

  createRollout(
    name: string,
    version: number,
    targets: { devices?: string[]; tags?: Record<string, string> },
  ) {
    return this.request('POST', '/api/v1/rollouts', {
      model: { name, version },
      targets,
      strategy: 'all-at-once',
    });
  }

  rollout(id: string): Promise<any> {
    return this.request('GET', `/api/v1/rollouts/${id}`);
  }

  device(id: string): Promise<any> {
    return this.request('GET', `/api/v1/devices/${id}`);
  }

  /** Queue a training run for `task`; resolves with the queued run. */
  train(task: string, body: { snapshot?: string; config?: Record<string, unknown> } = {}): Promise<any> {
    return this.request('POST', `/api/v1/tasks/${task}/train`, body);
  }

  /** Wait until the training run has finished (either way), and return it. */
  async settledRun(id: string, timeoutMs = 120_000): Promise<any> {
    return waitFor(
      async () => {
        const run = await this.request('GET', `/api/v1/training-runs/${id}`);
        return run.status === 'succeeded' || run.status === 'failed' ? run : undefined;
      },
      `training run ${id} to finish`,
      timeoutMs,
      100,
    );
  }

  /** Wait until the rollout leaves `progressing`, and return it. */
  async settledRollout(id: string, timeoutMs = 60_000): Promise<any> {
    return waitFor(
      async () => {
        const r = await this.rollout(id);
        return r.phase !== 'progressing' ? r : undefined;
      },
      `rollout ${id} to finish`,
      timeoutMs,
      100,
    );
  }
}
