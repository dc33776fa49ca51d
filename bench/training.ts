/**
 * `npm run bench -- training`: training samples/s per epoch (MLP 32→64→64→3, 100,000 rows × 32 features,
 * batch 256; an epoch's time includes its holdout evaluation) on every TF.js backend this machine has, each
 * in its own process; then the pool's ingestion over MQTT (bench/ingestion.ts).
 * Goals: WASM at least 3x the pure-JS backend; ingestion at least 50,000 samples/s.
 */
import { fileURLToPath } from 'node:url';
import { runToExit } from '../test/support/process.js';
import ingestion from './ingestion.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const EPOCHS: Record<string, number> = { 'tensorflow-gpu': 3, tensorflow: 3, wasm: 3, cpu: 2 };
const NATIVE_PACKAGES: Record<string, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

interface Result {
  backend: string;
  notInstalled?: boolean;
  error?: string;
  trainRows?: number;
  samplesPerSecond?: number[];
}

async function runChild(backend: string): Promise<Result> {
  const script = fileURLToPath(new URL('./training-child.ts', import.meta.url));
  // stderr is kept for failures only: TF.js's pure-JS backend prints an install-tfjs-node banner.
  const { code, stdout, stderr } = await runToExit(process.execPath, [
    '--import',
    'tsx',
    script,
    backend,
    String(ROWS),
    String(EPOCHS[backend]),
  ]);
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as Result;
  } catch {
    throw new Error(
      `training bench for ${backend} exited ${code} without a result: ${stdout.slice(-500)}${stderr.slice(-1500)}`,
    );
  }
}

export default async function main(): Promise<void> {
  console.log(`training bench: MLP 32→64→64→3, ${ROWS.toLocaleString()} rows × 32 features, batch 256`);
  const results: Result[] = [];
  for (const backend of ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']) {
    const r = await runChild(backend);
    results.push(r);
    if (r.notInstalled) {
      console.log(`  ${backend.padEnd(15)} not installed (${NATIVE_PACKAGES[backend]})`);
      continue;
    }
    if (r.error) {
      console.log(`  ${backend.padEnd(15)} failed to load: ${r.error.slice(0, 120)}`);
      continue;
    }
    const rates = r.samplesPerSecond!;
    // The first epoch includes kernel compilation/warm-up; later epochs are the steady rate.
    const steady = rates.length > 1 ? rates.slice(1) : rates;
    const mean = steady.reduce((a, b) => a + b, 0) / steady.length;
    console.log(
      `  ${backend.padEnd(15)} ${Math.round(mean).toLocaleString().padStart(8)} samples/s per epoch (epochs: ${rates.map((x) => Math.round(x).toLocaleString()).join(', ')}; ${r.trainRows} train rows)`,
    );
    (r as Result & { mean: number }).mean = mean;
  }
  const of = (name: string) =>
    (results.find((r) => r.backend === name) as (Result & { mean?: number }) | undefined)?.mean;
  const wasm = of('wasm');
  const cpu = of('cpu');
  if (wasm && cpu) {
    const ratio = wasm / cpu;
    console.log(`\n  WASM vs pure JS: ${ratio.toFixed(1)}x (goal ≥ 3x) ${ratio >= 3 ? 'PASS' : 'MISS'}`);
  } else {
    console.log('\n  WASM vs pure JS: not measured (a backend did not load)');
  }
  console.log('');
  await ingestion();
}
