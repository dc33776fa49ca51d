/**
 * `npm run build:agent -- --target linux-x64|linux-arm64 [--out-dir dist]`: the device agent as one
 * executable, `dist/edgefleet-agent-<target>` (see build/agent/build.ts). Without --target: this machine's.
 */
import { parseArgs } from 'node:util';
import { buildAgent } from './agent/build.js';
import { hostTarget, isTarget, TARGETS } from './agent/targets.js';

const { values } = parseArgs({
  options: { target: { type: 'string' }, 'out-dir': { type: 'string' } },
  strict: true,
});
const target = values.target ?? hostTarget();
if (!target || !isTarget(target)) {
  console.error(`usage: npm run build:agent -- --target <${TARGETS.join('|')}> [--out-dir <dir>]`);
  process.exit(2);
}
const started = performance.now();
try {
  const result = await buildAgent({
    target,
    ...(values['out-dir'] ? { outDir: values['out-dir'] } : {}),
    log: (line) => console.log(line),
  });
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  console.log(
    `built ${result.executable}: ${mb(result.bytes)} (Node v${result.nodeVersion}` +
      `${result.nodeBaseStripped ? ', stripped' : ''}; bundle ${mb(result.bundleBytes)}` +
      `${result.codeCache ? ', V8 code cache' : ', no code cache (cross build)'}) in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  for (const a of result.assets) {
    console.log(
      `  embedded ${a.source}: ${mb(a.size)}${a.encoding === 'br' ? ` → ${mb(a.storedBytes)} brotli` : ''}`,
    );
  }
  console.log(`  manifest: ${result.assetsFile}`);
} catch (err) {
  console.error(`build:agent: ${(err as Error).message}`);
  process.exit(1);
}
