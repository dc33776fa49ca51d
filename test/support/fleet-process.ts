/**
 * The fleet server as a real child process (`bin/edgefleet.js serve`), for tests that kill it hard
 * (SIGKILL) and start it again on the same data directory and ports, as an operator's supervisor would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Api, REPO_PROFILES } from './fleet.js';

const FLEET_BIN = fileURLToPath(new URL('../../bin/edgefleet.js', import.meta.url));

export class FleetProcess {
  httpUrl = '';
  mqttUrl = '';
  api!: Api;
  stderr = '';
  private child: ChildProcess | null = null;
  private exited: Promise<number | null> = Promise.resolve(null);
  private signal: Promise<NodeJS.Signals | null> = Promise.resolve(null);

  private constructor(readonly dataDir: string) {}

  /** `env`: extra environment for the process (a fault hook, say). */
  static async start(dataDir: string, env: Record<string, string> = {}): Promise<FleetProcess> {
    const fleet = new FleetProcess(dataDir);
    await fleet.spawn(0, 0, env);
    return fleet;
  }

  /** The signal that ended the process, once it ends by itself (a fault hook's SIGKILL); bounded. */
  async ended(what: string, timeoutMs = 120_000): Promise<NodeJS.Signals | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${this.stderr.slice(-3000)}`),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.signal, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL: no shutdown hook runs, as in a power loss or an OOM kill. */
  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** Start again on the same data directory and ports. */
  async restart(env: Record<string, string> = {}): Promise<void> {
    await this.spawn(Number(new URL(this.httpUrl).port), Number(new URL(this.mqttUrl).port), env);
  }

  async stop(): Promise<void> {
    this.child?.kill('SIGTERM');
    await this.exited;
  }

  private async spawn(httpPort: number, mqttPort: number, env: Record<string, string>): Promise<void> {
    const args = [
      FLEET_BIN,
      'serve',
      '--data-dir',
      this.dataDir,
      '--http-host',
      '127.0.0.1',
      '--mqtt-host',
      '127.0.0.1',
      '--http-port',
      String(httpPort),
      '--mqtt-port',
      String(mqttPort),
      '--profiles-dir',
      REPO_PROFILES,
      '--log-level',
      'warn',
    ];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ORT_DISABLE_TELEMETRY: '1', ...env },
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    this.signal = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    const line = await new Promise<RegExpExecArray>((resolve, reject) => {
      let buffer = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        buffer += chunk;
        const m = /edgefleet fleet server: http=(\S+) mqtt=(\S+)/.exec(buffer);
        if (m) resolve(m);
      });
      child.on('exit', (code) =>
        reject(new Error(`fleet server exited (${code}) before it was ready:\n${this.stderr.slice(-3000)}`)),
      );
    });
    this.httpUrl = line[1]!;
    this.mqttUrl = line[2]!;
    const token = (await readFile(join(this.dataDir, 'admin-token'), 'utf8')).trim();
    this.api = new Api(this.httpUrl, token);
  }
}
