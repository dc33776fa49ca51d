/**
 * What shadowing costs the active model: a real agent serving v1 under concurrent load (wrk, c=8), measured
 * alternately without a shadow and while a candidate shadows at 100% (a blue-green rollout held in its shadow
 * step, then aborted), ROUNDS times. Medians of each side are compared.
 * Goal: shadow at 100% adds at most 5% to the active p99.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentProcess, enrollAgent } from '../test/support/agent-process.js';
import { startTestFleet } from '../test/support/fleet.js';
import { FEATURES, inferBody, mlp, randomBatch } from '../test/support/models.js';
import { waitFor } from '../test/support/wait.js';
import { assertWrk, type LoadResult, wrk } from './wrk.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONCURRENCY = 8;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

export default async function main(): Promise<void> {
  await assertWrk();
  const model = mlp(7);
  const body = JSON.stringify(inferBody(randomBatch(1, 1), 1));
  console.log(
    `shadow bench: MLP ${FEATURES}→64→64→2, one sample per request, c=${CONCURRENCY}, ${SECONDS}s per run`,
  );
  const env = await startTestFleet();
  const agentDir = await mkdtemp(join(tmpdir(), 'edgefleet-bench-shadow-'));
  let agent: AgentProcess | undefined;
  try {
    const { token } = await env.api.enrollmentToken({ tags: { bench: 'shadow' } });
    await enrollAgent({ server: env.fleet.httpUrl, token, dataDir: agentDir });
    // Capture off: the pool's ingestion (in this process) would compete for the two cores and blur the figures.
    agent = await AgentProcess.start({
      dataDir: agentDir,
      telemetryIntervalMs: 1000,
      args: ['--sample-rate', '0'],
    });
    await env.api.pushModel('bench', model);
    const first = await env.api.createRollout('bench', 1, { tags: { bench: 'shadow' } });
    if ((await env.api.settledRollout(first.id)).phase !== 'succeeded') throw new Error('v1 rollout failed');
    const url = `${agent.apiUrl}/v2/models/bench/infer`;
    await wrk(url, body, CONCURRENCY, 2); // warm-up

    // Alternate runs without and with a shadow, so drift in the machine's load hits both sides alike.
    const without: LoadResult[] = [await wrk(url, body, CONCURRENCY, SECONDS)];
    const withShadow: LoadResult[] = [];
    const totals = { mirrored: 0, compared: 0, dropped: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const pushed = await env.api.pushModel('bench', model); // the same function: every comparison completes
      const bg = await env.api.request('POST', '/api/v1/rollouts', {
        model: { name: 'bench', version: pushed.version },
        targets: { tags: { bench: 'shadow' } },
        strategy: 'blue-green',
        windowS: 3600, // held in the shadow step for the whole measurement
      });
      await waitFor(
        async () => ((await env.api.rollout(bg.id)).summary.shadowing === 1 ? true : undefined),
        'the agent to shadow the candidate',
        60_000,
        100,
      );
      await wrk(url, body, CONCURRENCY, 1); // the shadow session's first runs
      withShadow.push(await wrk(url, body, CONCURRENCY, SECONDS));
      await new Promise((r) => setTimeout(r, 1500)); // one telemetry window reports the shadow work
      await env.api.request('POST', `/api/v1/rollouts/${bg.id}/abort`, { reason: 'bench round done' });
      await waitFor(
        async () => ((await env.api.rollout(bg.id)).phase === 'rolled_back' ? true : undefined),
        'the shadow to be discarded',
        60_000,
        100,
      );
      without.push(await wrk(url, body, CONCURRENCY, SECONDS));
    }
    const windows = await env.fleet.db
      .collection<{ shadow: { mirrored: number; compared: number; dropped: number }[] }>('telemetry-windows')
      .values();
    for (const s of windows.flatMap((w) => w.shadow)) {
      totals.mirrored += s.mirrored;
      totals.compared += s.compared;
      totals.dropped += s.dropped;
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const summary = (runs: LoadResult[]) => ({
      requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
      p50Ms: median(runs.map((r) => r.p50Ms)),
      p99Ms: median(runs.map((r) => r.p99Ms)),
    });
    const baseline = summary(without);
    const shadowed = summary(withShadow);
    const row = (label: string, r: Pick<LoadResult, 'requestsPerSecond' | 'p50Ms' | 'p99Ms'>) =>
      console.log(
        `  ${label.padEnd(28)} ${r.requestsPerSecond.toFixed(0).padStart(8)}  ${r.p50Ms.toFixed(3).padStart(8)}  ${r.p99Ms.toFixed(3).padStart(8)}`,
      );
    console.log('\n  active model                    req/s    p50 ms    p99 ms');
    without.forEach((r, i) => {
      row(`no shadow, run ${i + 1}`, r);
      if (withShadow[i]) row(`shadow at 100%, run ${i + 1}`, withShadow[i]);
    });
    row(`median, no shadow (${without.length})`, baseline);
    row(`median, shadow (${withShadow.length})`, shadowed);
    console.log(
      `\n  shadow work in telemetry: ${totals.mirrored} mirrored, ${totals.compared} compared, ${totals.dropped} dropped (queue full)`,
    );
    const added = shadowed.p99Ms / baseline.p99Ms - 1;
    console.log(
      `  active p99 with shadow vs baseline: ${added >= 0 ? '+' : ''}${(added * 100).toFixed(1)}% (goal ≤ +5%) ${added <= 0.05 ? 'PASS' : 'MISS'}`,
    );
  } finally {
    await agent?.kill('SIGTERM');
    await env.close();
    await rm(agentDir, { recursive: true, force: true });
  }
}
