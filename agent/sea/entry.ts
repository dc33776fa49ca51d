/**
 * The single executable's main script (bundled to CommonJS by build/agent; the counterpart of
 * bin/edgefleet-agent.js). `--version` answers before anything native loads, so a cross-built executable
 * can be checked under qemu-user, where loading ONNX Runtime crashes in its CPU probe. Everything else loads
 * the CLI, whose first use of ONNX Runtime and LevelDB extracts the embedded addons (agent/sea/native.ts).
 */
import { setFlagsFromString } from 'node:v8';
import { versionLine } from '../version.js';

// V8 settings for a device. A Node 20 single executable cannot carry V8 options (its SEA config has no
// `execArgv`), and heap sizes are fixed once V8 runs; these two are read as the heap grows, so setting them
// here, first thing, works. V8 has compiled this script by then, with the code cache a same-architecture
// build embeds: that cache is made under V8's default flags, and V8 refuses one made under other flags.
// Kept out of bin/edgefleet-agent.js on purpose: benches measure that one with Node's defaults.
// Figures: `npm run bench -- footprint`.
for (const flag of [
  // Keep the young generation at its initial size (semi-spaces of ~1 MB) instead of letting it grow to
  // 2 × 16 MB under load: ~25 MB less RSS while serving, for more frequent scavenges that stay cheap
  // (request garbage hardly survives).
  '--semi-space-growth-factor=1',
  // Heap-growing heuristics that favour memory over speed (old generation collected with less slack).
  '--optimize-for-size',
]) {
  setFlagsFromString(flag);
}

// Before ONNX Runtime loads: it would otherwise write a device id and a telemetry db under $XDG_CACHE_HOME.
process.env['ORT_DISABLE_TELEMETRY'] ??= '1';

const first = process.argv[2];
if (first === '--version' || first === '-V') {
  process.stdout.write(`${versionLine()}\n`);
} else {
  import('../cli.js')
    .then(({ main }) => main(process.argv))
    .catch((err: Error) => {
      process.stderr.write(`edgefleet-agent: ${err.stack ?? err.message}\n`);
      process.exit(1);
    });
}
