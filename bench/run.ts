/**
 * `npm run bench -- <name>`: runs one benchmark, prints its figures and how they compare with the baseline
 * measured in the same run. Benchmarks live here, never in tests (tests carry no wall-clock limits).
 */
const BENCHES: Record<string, () => Promise<{ default: () => Promise<void> }>> = {
  console: () => import('./console.js'),
  drift: () => import('./drift.js'),
  footprint: () => import('./footprint.js'),
  inference: () => import('./inference.js'),
  ingestion: () => import('./ingestion.js'),
  reconcile: () => import('./reconcile.js'),
  shadow: () => import('./shadow.js'),
  training: () => import('./training.js'),
};

const name = process.argv[2];
if (!name || !(name in BENCHES)) {
  console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}>`);
  process.exit(2);
}
process.env.ORT_DISABLE_TELEMETRY ??= '1';
const bench = await BENCHES[name]!();
await bench.default();
process.exit(0);
