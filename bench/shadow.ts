/**
 * What shadowing costs the active model: a real agent serving v1 under load from wrk, measured alternately
 * without a shadow and while a candidate shadows at 100% (a blue-green rollout held in its shadow step, then
 * aborted), ROUNDS times, at each concurrency. Each shadowed run is compared with the mean of the runs without
 * a shadow just before and just after it (which cancels slow drift in the machine's load), and the median of
 * those paired changes is the verdict; medians of each side and the spread of the runs without a shadow (the
 * noise floor) are printed beside it. Per shadowed run, the device's own telemetry says how many
 * mirrored requests the candidate actually compared and how many it dropped (queue full): shadow work only
 * runs while no active request is in flight, so under saturation most mirrors are dropped by design.
 * Goal: under concurrent load (c=8), shadow at 100% adds at most 5% to the active p99.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentProcess, enrollAgent } from '../test/support/agent-process.js';
import { startTestFleet } from '../test/support/fleet.js';
import { FEATURES, inferBody, mlp, randomBatch } from '../test/support/models.js';
import { waitFor } from '../test/support/wait.js';
import { assertWrk, type LoadResult, wrk } from './wrk.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** The goal's load (c=8) and, for comparison, one client (the agent idles between requests). */
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '8,1').split(',').map(Number);
const GOAL_CONCURRENCY = 8;
const TELEMETRY_MS = 1000;

interface ShadowWork {
  mirrored: number;
  compared: number;
  dropped: number;
}
interface Side {
  runs: LoadResult[];
  work: ShadowWork[];
}

export default async function main(): Promise<void> {
  await assertWrk();
  const model = mlp(7);
  const body = JSON.stringify(inferBody(randomBatch(1, 1), 1));
  console.log(
    `shadow bench: MLP ${FEATURES}→64→64→2, one sample per request, c=${CONCURRENCIES.join(' and ')}, ` +
      `${SECONDS}s per run, ${ROUNDS} rounds alternating with and without a shadow`,
  );
  const env = await startTestFleet();
  const agentDir = await mkdtemp(join(tmpdir(), 'edgefleet-bench-shadow-'));
  let agent: AgentProcess | undefined;
  try {
    const { token } = await env.api.enrollmentToken({ tags: { bench: 'shadow' } });
    await enrollAgent({ server: env.fleet.httpUrl, token, dataDir: agentDir });
    // Capture off: the pool's ingestion (in this process) would compete for the cores and blur the figures.
    agent = await AgentProcess.start({
      dataDir: agentDir,
      telemetryIntervalMs: TELEMETRY_MS,
      args: ['--sample-rate', '0'],
    });
    await env.api.pushModel('bench', model);
    const first = await env.api.createRollout('bench', 1, { tags: { bench: 'shadow' } });
    if ((await env.api.settledRollout(first.id)).phase !== 'succeeded') throw new Error('v1 rollout failed');
    const url = `${agent.apiUrl}/v2/models/bench/infer`;
    await wrk(url, body, Math.max(...CONCURRENCIES), 2); // warm-up

    /** Shadow work the device reported for a run between `from` and `to` (windows cover the second before). */
    const shadowWork = async (from: number, to: number): Promise<ShadowWork> => {
      const windows = await env.fleet.db
        .collection<{ receivedAt: number; shadow: ShadowWork[] }>('telemetry-windows')
        .values();
      const sum = { mirrored: 0, compared: 0, dropped: 0 };
      for (const w of windows) {
        if (w.receivedAt < from + TELEMETRY_MS || w.receivedAt > to + TELEMETRY_MS) continue;
        for (const s of w.shadow) {
          sum.mirrored += s.mirrored;
          sum.compared += s.compared;
          sum.dropped += s.dropped;
        }
      }
      return sum;
    };

    const without = new Map<number, Side>(CONCURRENCIES.map((c) => [c, { runs: [], work: [] }]));
    const withShadow = new Map<number, Side>(CONCURRENCIES.map((c) => [c, { runs: [], work: [] }]));
    // Alternate runs without and with a shadow, so drift in the machine's load hits both sides alike.
    for (const c of CONCURRENCIES) without.get(c)!.runs.push(await wrk(url, body, c, SECONDS));
    for (let round = 0; round < ROUNDS; round++) {
      const pushed = await env.api.pushModel('bench', model); // the same function: every comparison agrees
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
      for (const c of CONCURRENCIES) {
        await wrk(url, body, c, 1); // the shadow's first runs under this load
        const from = Date.now();
        withShadow.get(c)!.runs.push(await wrk(url, body, c, SECONDS));
        const to = Date.now();
        await new Promise((r) => setTimeout(r, TELEMETRY_MS + 500)); // the last window of the run reports
        withShadow.get(c)!.work.push(await shadowWork(from, to));
      }
      await env.api.request('POST', `/api/v1/rollouts/${bg.id}/abort`, { reason: 'bench round done' });
      await waitFor(
        async () => ((await env.api.rollout(bg.id)).phase === 'rolled_back' ? true : undefined),
        'the shadow to be discarded',
        60_000,
        100,
      );
      for (const c of CONCURRENCIES) without.get(c)!.runs.push(await wrk(url, body, c, SECONDS));
    }

    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const summary = (runs: LoadResult[]) => ({
      requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
      p50Ms: median(runs.map((r) => r.p50Ms)),
      p99Ms: median(runs.map((r) => r.p99Ms)),
      non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    });
    const row = (label: string, r: LoadResult, work?: ShadowWork) =>
      console.log(
        `  ${label.padEnd(30)} ${r.requestsPerSecond.toFixed(0).padStart(8)}  ${r.p50Ms.toFixed(3).padStart(8)}  ${r.p99Ms.toFixed(3).padStart(8)}` +
          (work ? `   ${describeWork(work)}` : '') +
          (r.non2xx ? `  (${r.non2xx} non-2xx!)` : ''),
      );
    const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
    const verdicts: string[] = [];
    for (const c of CONCURRENCIES) {
      const base = without.get(c)!;
      const shadowed = withShadow.get(c)!;
      console.log(
        `\n  c=${c}: active model                req/s    p50 ms    p99 ms   shadow work (telemetry)`,
      );
      base.runs.forEach((r, i) => {
        row(`no shadow, run ${i + 1}`, r);
        if (shadowed.runs[i]) row(`shadow at 100%, run ${i + 1}`, shadowed.runs[i], shadowed.work[i]);
      });
      const b = summary(base.runs);
      const s = summary(shadowed.runs);
      row(`median, no shadow (${base.runs.length})`, b);
      row(`median, shadow (${shadowed.runs.length})`, s, {
        mirrored: shadowed.work.reduce((n, w) => n + w.mirrored, 0),
        compared: shadowed.work.reduce((n, w) => n + w.compared, 0),
        dropped: shadowed.work.reduce((n, w) => n + w.dropped, 0),
      });
      const p99s = base.runs.map((r) => r.p99Ms);
      const noise = Math.max(...p99s) / Math.min(...p99s) - 1;
      // Paired: each shadowed run against the runs without a shadow on either side of it.
      const paired = (key: 'p50Ms' | 'p99Ms') =>
        median(shadowed.runs.map((r, i) => r[key] / ((base.runs[i]![key] + base.runs[i + 1]![key]) / 2) - 1));
      const added = paired('p99Ms');
      const addedP50 = paired('p50Ms');
      console.log(
        `  medians: p99 ${pct(s.p99Ms / b.p99Ms - 1)}, p50 ${pct(s.p50Ms / b.p50Ms - 1)}; noise floor: the runs without a shadow differ by up to ${pct(noise)} in p99 among themselves`,
      );
      const line = `c=${c}: active p99 with shadow vs without, median of paired runs ${pct(added)} (p50 ${pct(addedP50)})`;
      if (c === GOAL_CONCURRENCY) {
        verdicts.push(`  ${line} (goal ≤ +5%) ${added <= 0.05 ? 'PASS' : 'MISS'}`);
      } else {
        verdicts.push(`  ${line} (for comparison; the goal is set at c=${GOAL_CONCURRENCY})`);
      }
    }
    console.log(`\n${verdicts.join('\n')}`);
  } finally {
    await agent?.kill('SIGTERM');
    await env.close();
    await rm(agentDir, { recursive: true, force: true });
  }
}

function describeWork(w: ShadowWork): string {
  const share = w.mirrored > 0 ? ((w.compared / w.mirrored) * 100).toFixed(1) : '0.0';
  return `${w.compared}/${w.mirrored} compared (${share}%), ${w.dropped} dropped`;
}
