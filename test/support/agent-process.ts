/**
 * Real agent processes for end-to-end tests: `bin/edgefleet-agent.js` spawned as a child process, with its
 * stdout read line by line so tests can await the lines the agent promises to print (ready, fault hooks).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { inferBody, maxAbsDiff } from './models.js';
import { runToExit } from './process.js';

const AGENT_BIN = fileURLToPath(new URL('../../bin/edgefleet-agent.js', import.meta.url));

export interface RunOptions {
  dataDir: string;
  env?: Record<string, string>;
  telemetryIntervalMs?: number;
  /** Extra `run` flags (e.g. sampling settings). */
  args?: string[];
  /** Override the binary (the executable tests run the single executable through the same harness). */
  command?: string[];
}

export async function enrollAgent(options: {
  server: string;
  token: string;
  dataDir: string;
  profile?: string;
  command?: string[];
}): Promise<string> {
  const args = [
    'enroll',
    '--server',
    options.server,
    '--token',
    options.token,
    '--data-dir',
    options.dataDir,
  ];
  if (options.profile) args.push('--profile', options.profile);
  const [cmd, ...pre] = options.command ?? [process.execPath, AGENT_BIN];
  const { code, stdout: out, stderr: err } = await runToExit(cmd!, [...pre, ...args]);
  if (code !== 0) throw new Error(`agent enroll exited ${code}: ${err || out}`);
  const match = /enrolled device (\S+)/.exec(out);
  if (!match) throw new Error(`agent enroll printed no device id: ${out}`);
  return match[1]!;
}

export class AgentProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  private waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  readonly exited: Promise<number | null>;
  apiUrl = '';
  deviceId = '';

  private constructor(child: ChildProcess) {
    this.child = child;
    let buffer = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffer += chunk;
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        this.onLine(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf('\n');
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      // Keep the tail only: enough to explain a failure.
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  static async start(options: RunOptions): Promise<AgentProcess> {
    const args = ['run', '--data-dir', options.dataDir, '--api-port', '0'];
    if (options.telemetryIntervalMs)
      args.push('--telemetry-interval-ms', String(options.telemetryIntervalMs));
    if (options.args) args.push(...options.args);
    const [cmd, ...pre] = options.command ?? [process.execPath, AGENT_BIN];
    return AgentProcess.startCommand([cmd!, ...pre, ...args], options.env);
  }

  /**
   * Spawn a whole command line and wait for the agent's ready line: `start` for the agent, and for other
   * programs that print it (the footprint bench's runtime floor).
   */
  static async startCommand(
    commandLine: readonly string[],
    env: Record<string, string> = {},
  ): Promise<AgentProcess> {
    const [cmd, ...args] = commandLine;
    const child = spawn(cmd!, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ORT_DISABLE_TELEMETRY: '1', ...env },
    });
    const agent = new AgentProcess(child);
    const ready = await agent.waitForLine(
      /^edgefleet-agent ready device=(\S+) api=(\S+)$/,
      'the agent ready line',
    );
    agent.deviceId = ready[1]!;
    agent.apiUrl = ready[2]!;
    return agent;
  }

  private onLine(line: string): void {
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => {
      const m = w.re.exec(line);
      if (m) w.resolve(m);
      return !m;
    });
  }

  /** Resolve with the first line (already printed or future) matching `re`. */
  waitForLine(re: RegExp, what: string, timeoutMs = 60_000): Promise<RegExpExecArray> {
    for (const line of this.lines) {
      const m = re.exec(line);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; stderr tail:\n${this.stderr.slice(-3000)}`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        re,
        resolve: (m: RegExpExecArray) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      this.waiters.push(waiter);
      this.exited.then((code) => {
        if (this.waiters.includes(waiter)) {
          clearTimeout(timer);
          reject(
            new Error(`agent exited (${code}) before ${what}; stderr tail:\n${this.stderr.slice(-3000)}`),
          );
        }
      });
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await this.exited;
  }

  /** POST an Open Inference Protocol v2 request; returns status and parsed body. */
  async infer(model: string, body: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${this.apiUrl}/v2/models/${model}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }
}

/**
 * `agent` answers an inference of `data` (`rows` rows) with `model` at `version`, and its `output` tensor
 * is `expected` (a direct ONNX Runtime run of the same model) to within 1e-6.
 */
export async function expectServes(
  agent: AgentProcess,
  model: string,
  served: { version: number; data: number[]; rows: number; expected: Float32Array; what?: string },
): Promise<void> {
  const res = await agent.infer(model, inferBody(served.data, served.rows));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.model_version).toBe(String(served.version));
  const output = res.body.outputs.find((o: { name: string }) => o.name === 'output');
  expect(output.shape).toEqual([served.rows, served.expected.length / served.rows]);
  expect(maxAbsDiff(output.data, served.expected), served.what).toBeLessThanOrEqual(1e-6);
}
