/**
 * Drive an HTTP endpoint with wrk (Debian package `wrk`): the lowest-overhead load generator available here,
 * so client cost does not swamp sub-millisecond server figures. Returns requests/s and latency percentiles.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
}

export async function assertWrk(): Promise<void> {
  try {
    await run('wrk', ['--version']).catch((err) => {
      // wrk --version exits 1 after printing its banner.
      if (!String(err.stdout ?? '').includes('wrk')) throw err;
    });
  } catch {
    throw new Error('this benchmark needs wrk: apt-get install wrk');
  }
}

export async function wrk(
  url: string,
  body: string,
  connections: number,
  seconds: number,
  /** Pin wrk to these CPUs (`taskset -c` list), away from the server under test. */
  cpus?: string,
): Promise<LoadResult> {
  const script = join(tmpdir(), `edgefleet-wrk-${process.pid}.lua`);
  await writeFile(
    script,
    `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ${JSON.stringify(body)}\n`,
  );
  const threads = Math.min(connections, 2);
  const [cmd, ...pre] = cpus ? ['taskset', '-c', cpus, 'wrk'] : ['wrk'];
  const { stdout } = await run(cmd!, [
    ...pre,
    '-t',
    String(threads),
    '-c',
    String(connections),
    '-d',
    `${seconds}s`,
    '--latency',
    '-s',
    script,
    url,
  ]);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  const p50 = /\s50%\s+([\d.]+)(us|ms|s)/.exec(stdout);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(stdout);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout);
  if (!rps || !p50 || !p99) throw new Error(`could not read wrk output:\n${stdout}`);
  return {
    requestsPerSecond: Number(rps[1]),
    p50Ms: toMs(p50),
    p99Ms: toMs(p99),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

function toMs(match: RegExpExecArray): number {
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

export function percentile(sorted: Float64Array | number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
