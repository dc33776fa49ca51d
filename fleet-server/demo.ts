/**
 * `npm run demo`: the whole product in one run, narrated. A fleet server on its embedded defaults (fresh data
 * directory, free ports) and 3 real agent processes; a task bootstrapped from generated data; v1 trained,
 * signed and rolled out; simulated apps on each device call the local inference API and send ground truth.
 * Then the world the apps see shifts: the devices detect drift and capture more, the fleet retrains once on
 * the new data, v2 beats v1 on it and canaries out, and the drift clears. Everything goes through the same
 * HTTP API and MQTT protocol an operator's fleet uses.
 *
 * `--exit` stops when the story is told (CI); otherwise everything keeps running for exploration with the
 * CLI until Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededNormals } from '../shared/onnx/mlp.js';
import { ApiClient } from './cli/client.js';
import { startFleetServer } from './main.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const AGENT_BIN = join(ROOT, 'bin', 'edgefleet-agent.js');
const AGENTS = 3;
const started = performance.now();
const exitWhenDone = process.argv.includes('--exit');

function say(line: string): void {
  const s = ((performance.now() - started) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`[${s}s] ${line}\n`);
}

// ---- the simulated world -------------------------------------------------------------------------------
type World = 'A' | 'B';
/** The label the world gives a row: `pass` when f1 > 2·max(0, f0 − 2). Under A that is nearly "f1 > 0". */
const truth = (x: number[]) => (x[1]! > 2 * Math.max(0, x[0]! - 2) ? 'pass' : 'fail');
/** World A: four features ~N(0, 1). World B: f0 and f1 moved by +4 (a new supplier, a recalibrated sensor). */
const row = (draw: () => number, world: World) => {
  const shift = world === 'B' ? 4 : 0;
  return [draw() + shift, draw() + shift, draw(), draw()];
};

// ---- small helpers ---------------------------------------------------------------------------------------
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function runAgent(args: string[], onLine?: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, [AGENT_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '1', EDGEFLEET_LOG_LEVEL: 'warn' },
  });
  let buffer = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) onLine?.(line);
  });
  child.stderr!.resume(); // agents log JSON on stderr; the demo narrates instead
  return child;
}

async function enroll(server: string, token: string, dataDir: string): Promise<void> {
  const child = runAgent(['enroll', '--server', server, '--token', token, '--data-dir', dataDir]);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`agent enrollment exited ${code}`);
}

async function startAgentProcess(
  dataDir: string,
): Promise<{ child: ChildProcess; deviceId: string; apiUrl: string }> {
  let resolveReady!: (m: RegExpExecArray) => void;
  const ready = new Promise<RegExpExecArray>((r) => {
    resolveReady = r;
  });
  const child = runAgent(
    [
      'run',
      '--data-dir',
      dataDir,
      '--api-port',
      '0',
      '--telemetry-interval-ms',
      '1000',
      '--sample-rate',
      '0.05',
      '--drift-sample-rate',
      '1',
      '--drift-window-samples',
      '200',
      '--drift-report-interval-ms',
      '2000',
      '--feedback-window-ms',
      '2000',
      '--sample-max-age-ms',
      '500',
    ],
    (line) => {
      const m = /^edgefleet-agent ready device=(\S+) api=(\S+)$/.exec(line);
      if (m) resolveReady(m);
    },
  );
  const m = await Promise.race([
    ready,
    new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`agent exited ${code} before ready`))),
    ),
  ]);
  return { child, deviceId: m[1]!, apiUrl: m[2]! };
}

/** An app on each device: infer, then send the ground truth; answers scored per world and model version. */
function startApps(agents: { apiUrl: string }[]) {
  let world: World = 'A';
  let running = true;
  const score = new Map<string, { right: number; total: number }>();
  const loops = agents.map(async (agent, a) => {
    const draw = seededNormals(100 + a);
    while (running) {
      const w = world;
      const x = row(draw, w);
      try {
        const res = await fetch(`${agent.apiUrl}/v2/models/quality/infer`, {
          method: 'POST',
          body: JSON.stringify({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP32', data: x }] }),
        });
        if (res.ok) {
          const body = (await res.json()) as {
            id: string;
            model_version: string;
            outputs: { data: number[] }[];
          };
          const [pFail, pPass] = body.outputs[0]!.data;
          const key = `${w}/v${body.model_version}`;
          const s = score.get(key) ?? { right: 0, total: 0 };
          s.total++;
          if ((pPass! > pFail! ? 'pass' : 'fail') === truth(x)) s.right++;
          score.set(key, s);
          await fetch(`${agent.apiUrl}/v2/models/quality/feedback`, {
            method: 'POST',
            body: JSON.stringify({ id: body.id, label: truth(x) }),
          });
        }
      } catch {
        // the agent is restarting its session or going away: the app just tries again
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  return {
    set world(w: World) {
      world = w;
    },
    accuracy(w: World, version: number): string {
      const s = score.get(`${w}/v${version}`);
      return s ? `${((100 * s.right) / s.total).toFixed(1)}% of ${s.total} answers` : 'no answers yet';
    },
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

// ---- the story -------------------------------------------------------------------------------------------
const root = await mkdtemp(join(tmpdir(), 'edgefleet-demo-'));
process.stdout.write(`edgefleet demo — everything lives in ${root}\n`);
const fleet = await startFleetServer({
  dataDir: join(root, 'fleet'),
  httpPort: 0,
  mqttPort: 0,
  logLevel: 'warn',
  retrainCheckMs: 500,
});
const token = fleet.adminToken || (await readFile(join(root, 'fleet', 'admin-token'), 'utf8')).trim();
const base = fleet.httpUrl;
const client = new ApiClient({ baseUrl: base, token, fetch });
say(`fleet server up: API ${base}, MQTT ${fleet.mqttUrl}`);

const agents: Awaited<ReturnType<typeof startAgentProcess>>[] = [];
let apps: ReturnType<typeof startApps> | undefined;
const shutdown = async () => {
  await apps?.stop();
  for (const a of agents) a.child.kill('SIGTERM');
  await Promise.all(
    agents.map((a) => new Promise((r) => (a.child.exitCode === null ? a.child.once('exit', r) : r(null)))),
  );
  await fleet.close();
};
process.once('SIGINT', () => {
  process.stdout.write('\nstopping…\n');
  void shutdown().then(() => process.exit(0));
});

try {
  for (let i = 0; i < AGENTS; i++) {
    const { token: enrollToken } = await client.createEnrollmentToken({
      tags: { line: 'demo' },
    });
    const dataDir = join(root, `agent-${i + 1}`);
    await enroll(base, enrollToken, dataDir);
    agents.push(await startAgentProcess(dataDir));
  }
  say(
    `${AGENTS} agents enrolled (each its own process, MQTT credentials and local API): ${agents.map((a) => a.deviceId).join(', ')}`,
  );

  const draw = seededNormals(1);
  const csv = ['f0,f1,f2,f3,label'];
  for (let i = 0; i < 600; i++) {
    const x = row(draw, 'A');
    csv.push([...x.map((v) => v.toFixed(5)), truth(x)].join(','));
  }
  await client.importData('quality', csv.join('\n'), { format: 'csv', source: 'world-a.csv' });
  say('task "quality" bootstrapped from 600 generated rows of world A (4 features, labels pass/fail)');

  const config = { hidden: [24], epochs: 60, batchSize: 32, optimizer: { learningRate: 0.02 }, seed: 7 };
  const queued = await client.train('quality', { config });
  const run1 = await until('v1 to train', async () => {
    const r = await client.getTrainingRun(queued.id);
    return r.status === 'succeeded' || r.status === 'failed' ? r : undefined;
  });
  if (run1.status !== 'succeeded' || !run1.result) throw new Error(`training failed: ${run1.error?.message}`);
  const m1 = run1.result.metrics;
  say(
    `trained quality@1 on ${run1.result.trainRows} rows (TF.js backend ${run1.backend}), exported to ONNX and signed: holdout accuracy ${m1.kind === 'classification' ? `${(m1.accuracy * 100).toFixed(1)}%` : '-'}`,
  );

  const first = await client.createRollout({
    model: { name: 'quality', version: 'candidate' },
    targets: { tags: { line: 'demo' } },
    strategy: 'all-at-once',
  });
  await until('v1 rollout', async () => {
    const r = await client.getRollout(first.id);
    if (r.phase === 'failed' || r.phase === 'rolled_back') throw new Error(`v1 rollout ${r.phase}`);
    return r.phase === 'succeeded' ? r : undefined;
  });
  say(
    `rolled quality@1 out to all ${AGENTS} devices (downloaded, signature verified, self-tested, activated); production = v1`,
  );

  await client.setRetrainPolicy('quality', {
    deviceShare: 0.66,
    forS: 2,
    mode: 'auto',
    margin: 0.05,
    minNewSamples: 300,
    rollout: {
      steps: [34, 100],
      windowS: 4,
      gates: ['activation_failure_share<=0/1', 'error_rate<=0.01/50', 'p95_latency_ratio<=3/50'],
    },
  });
  say(
    'retrain policy: when ≥ 66% of the devices on production drift for 2 s, retrain and canary automatically',
  );

  apps = startApps(agents);
  const drift = async () => (await client.driftStatus({ task: 'quality' })).models[0];
  const verdictsOn = async (version: number) =>
    ((await drift())?.devices ?? []).filter((d) => d.version === version);
  await until('no-drift reports on world A', async () => {
    const v = await verdictsOn(1);
    return v.length === AGENTS && v.every((d) => d.verdict === 'no_drift') ? v : undefined;
  });
  say(`apps send world A: every device reports "no drift" on v1 — live accuracy ${apps.accuracy('A', 1)}`);

  apps.world = 'B';
  say('the world shifts: apps now send world B (f0 and f1 moved by +4)…');
  const seen = new Set<string>();
  await until('drift reports on world B', async () => {
    for (const d of await verdictsOn(1)) {
      if (d.verdict !== 'drift' || seen.has(d.deviceId)) continue;
      seen.add(d.deviceId);
      const features = d.features.filter((f) => f.drifted);
      say(
        `  ${d.deviceId} reports drift: ${features.map((f) => `${f.name} (PSI ${f.psi.toFixed(2)})`).join(', ')}; capture raised to ${d.captureRate * 100}%`,
      );
    }
    return seen.size === AGENTS ? true : undefined;
  });

  const retrain = await until(
    'the retrain to fire',
    async () => (await client.listRetrains('quality')).retrains[0],
  );
  say(`retrain ${retrain.id} fired: ${retrain.trigger.reason}`);
  const trained = await until('the retrain to finish', async () => {
    const r = await client.getRetrain(retrain.id);
    // Past training and the steps that follow it at once (candidate alias, creating the canary).
    return ['training', 'setting_candidate', 'creating_rollout'].includes(r.status) ? undefined : r;
  });
  if (trained.status === 'failed') throw new Error(`retrain failed: ${trained.error?.message}`);
  say(
    `  trained quality@${trained.version} on snapshot ${trained.snapshot} (the data captured since the drift began)`,
  );
  say(`  ${trained.evaluation?.detail}`);
  if (trained.status !== 'rolling_out' || trained.version === null)
    throw new Error(`the challenger did not win: ${trained.status}`);
  const v2 = trained.version;
  say(
    `  v${trained.version} is the candidate; canary rollout ${trained.rollout} started (34% of devices, then 100%, gated)`,
  );

  let lastStep = '';
  const rollout = await until('the canary', async () => {
    const r = await client.getRollout(trained.rollout!);
    const step = `${r.phase} at ${r.percent}%`;
    if (step !== lastStep) {
      lastStep = step;
      const s = r.summary;
      say(
        `  rollout ${step}: ${s.active}/${s.total} devices on v${trained.version}, ${s.inProgress} installing, ${s.waiting} waiting`,
      );
    }
    return ['succeeded', 'failed', 'rolled_back', 'paused'].includes(r.phase) ? r : undefined;
  });
  if (rollout.phase !== 'succeeded') throw new Error(`the canary ended ${rollout.phase}`);
  say(`v${trained.version} runs on all ${AGENTS} devices; production = v${trained.version}`);

  await until('drift to clear', async () => {
    const v = await verdictsOn(v2);
    return v.length === AGENTS && v.every((d) => d.verdict === 'no_drift') ? v : undefined;
  });
  say(`drift cleared: every device reports "no drift" on v${trained.version}; capture back to 5%`);
  say(
    `live accuracy on world B: v1 ${apps.accuracy('B', 1)} → v${trained.version} ${apps.accuracy('B', v2)}`,
  );
  process.stdout.write(
    `\nExplore (in another terminal):\n  export EDGEFLEET_URL=${base} EDGEFLEET_TOKEN=${token}\n` +
      '  npx edgefleet drift status --task quality\n' +
      `  npx edgefleet retrain show ${retrain.id}\n` +
      '  npx edgefleet models lineage quality@production\n' +
      `  npx edgefleet rollout status ${trained.rollout}\n` +
      `The web console is at ${base}/: sign in with the token above.\n`,
  );
  if (exitWhenDone) {
    await shutdown();
    await rm(root, { recursive: true, force: true });
    process.exit(0);
  }
  process.stdout.write('Everything keeps running; Ctrl-C stops it.\n');
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  await shutdown().catch(() => undefined);
  process.exit(1);
}
