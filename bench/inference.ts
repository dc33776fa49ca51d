/**
 * Inference overhead of the agent: p50/p99 and requests/s of the agent's `/v2/models/{m}/infer` (a real
 * agent process that received the model through a real rollout) against, in the same run,
 *   (a) a direct in-process ONNX Runtime call on the same model with the same session options, and
 *   (b) a trivial hono endpoint (own process) that parses the request and does no inference,
 * at concurrency 1 and 32. Goals: agent p50 at c=1 within 0.15 ms of (a); agent ≥ 80% of (b)'s req/s at c=32.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { AgentProcess, enrollAgent } from '../test/support/agent-process.js';
import { startTestFleet } from '../test/support/fleet.js';
import { FEATURES, inferBody, mlp, randomBatch } from '../test/support/models.js';
import { assertWrk, type LoadResult, percentile, wrk } from './wrk.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

export default async function main(): Promise<void> {
  await assertWrk();
  const model = mlp(7);
  const sample = randomBatch(1, 1);
  const body = JSON.stringify(inferBody(sample, 1));

  console.log(`inference bench: MLP ${FEATURES}→64→64→2, one sample per request, ${SECONDS}s per load run`);
  const direct = await directOrt(model, sample);

  const env = await startTestFleet();
  const agentDir = await mkdtemp(join(tmpdir(), 'edgefleet-bench-agent-'));
  const trivial = await startTrivial();
  let agent: AgentProcess | undefined;
  try {
    const { token } = await env.api.enrollmentToken();
    const deviceId = await enrollAgent({ server: env.fleet.httpUrl, token, dataDir: agentDir });
    agent = await AgentProcess.start({ dataDir: agentDir });
    await env.api.pushModel('bench', model);
    const rollout = await env.api.createRollout('bench', 1, { devices: [deviceId] });
    const settled = await env.api.settledRollout(rollout.id);
    if (settled.phase !== 'succeeded') throw new Error(`rollout failed: ${JSON.stringify(settled.devices)}`);
    const agentUrl = `${agent.apiUrl}/v2/models/bench/infer`;
    const trivialUrl = `${trivial.url}/v2/models/bench/infer`;
    await wrk(agentUrl, body, 4, 1); // warm-up
    await wrk(trivialUrl, body, 4, 1);

    const rows: [string, LoadResult | { requestsPerSecond: number; p50Ms: number; p99Ms: number }][] = [];
    for (const c of [1, 32]) {
      rows.push([`(a) direct ORT       c=${c}`, c === 1 ? direct.c1 : direct.c32]);
      rows.push([`(b) trivial hono     c=${c}`, await wrk(trivialUrl, body, c, SECONDS)]);
      rows.push([`    agent /infer     c=${c}`, await wrk(agentUrl, body, c, SECONDS)]);
    }
    console.log('\n  target                  req/s       p50 ms    p99 ms');
    for (const [label, r] of rows) {
      const errors = 'non2xx' in r && r.non2xx ? `  (${r.non2xx} non-2xx!)` : '';
      console.log(
        `  ${label}  ${r.requestsPerSecond.toFixed(0).padStart(8)}  ${r.p50Ms.toFixed(3).padStart(9)}  ${r.p99Ms.toFixed(3).padStart(8)}${errors}`,
      );
    }
    const agentC1 = rows[2]![1];
    const trivialC32 = rows[4]![1];
    const agentC32 = rows[5]![1];
    const added = agentC1.p50Ms - direct.c1.p50Ms;
    const share = agentC32.requestsPerSecond / trivialC32.requestsPerSecond;
    console.log(
      `\n  agent p50 over direct ORT at c=1: +${added.toFixed(3)} ms (goal ≤ 0.150) ${added <= 0.15 ? 'PASS' : 'MISS'}`,
    );
    console.log(
      `  agent req/s vs trivial hono at c=32: ${(share * 100).toFixed(1)}% (goal ≥ 80%) ${share >= 0.8 ? 'PASS' : 'MISS'}`,
    );
  } finally {
    await agent?.kill('SIGTERM');
    trivial.child.kill('SIGTERM');
    await env.close();
    await rm(agentDir, { recursive: true, force: true });
  }
}

/** (a): the same model and session options the agent uses on the x86_64-cpu profile, called in-process. */
async function directOrt(model: Uint8Array, sample: number[]) {
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  });
  const feeds = () => ({ input: new ort.Tensor('float32', Float32Array.from(sample), [1, FEATURES]) });
  for (let i = 0; i < 2000; i++) await session.run(feeds());
  const n = 20_000;
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds());
    times[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  times.sort();
  const c1 = {
    requestsPerSecond: 1000 / (times.reduce((a, b) => a + b, 0) / n),
    p50Ms: percentile(times, 0.5),
    p99Ms: percentile(times, 0.99),
  };

  const lat: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await session.run(feeds());
        lat.push(performance.now() - t0);
        done++;
      }
    }),
  );
  lat.sort((a, b) => a - b);
  const c32 = {
    requestsPerSecond: done / SECONDS,
    p50Ms: percentile(lat, 0.5),
    p99Ms: percentile(lat, 0.99),
  };
  await session.release();
  return { c1, c32 };
}

async function startTrivial(): Promise<{ url: string; child: ReturnType<typeof spawn> }> {
  const script = fileURLToPath(new URL('./trivial-server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /trivial ready url=(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`trivial server exited ${code}`)));
  });
  return { url, child };
}
