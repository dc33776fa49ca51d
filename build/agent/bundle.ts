/**
 * The agent's JavaScript as one CommonJS file (a SEA main script must be CommonJS on Node 20): esbuild from
 * agent/sea/entry.ts. A plugin rewrites the two packages that find their native binding on disk so that they
 * ask agent/sea/native.ts instead, which extracts the embedded copy: onnxruntime-node's dist/binding.js
 * (`require(`../bin/napi-v6/${platform}/${arch}/onnxruntime_binding.node`)`) and classic-level's binding.js
 * (`require('node-gyp-build')(__dirname)`, reached through `level`). If either file no longer looks as
 * expected (a dependency update), the build fails rather than shipping a loader that looks on disk.
 * A second plugin leaves out what a device does without: ws's optional native helpers (`bufferutil`,
 * `utf-8-validate`: ws uses its JS code when they fail to load, and trying them inside a SEA prints a
 * warning) and zod's error messages in languages other than English (268 KB, a fifth of the bundle, parsed
 * at every start).
 * The bundle is target-independent: the target only decides which native files are embedded.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Message, type Plugin } from 'esbuild';

const ENTRY = fileURLToPath(new URL('../../agent/sea/entry.ts', import.meta.url));
const LOADER = fileURLToPath(new URL('../../agent/sea/native.ts', import.meta.url));

const ORT_REQUIRE =
  /require\(`\.\.\/bin\/napi-v6\/\$\{process\.platform\}\/\$\{process\.arch\}\/onnxruntime_binding\.node`\)/g;
const CLASSIC_LEVEL_BINDING = "module.exports = require('node-gyp-build')(__dirname)";

function loaderCall(addon: string): string {
  return `require(${JSON.stringify(LOADER)}).loadEmbeddedAddon(${JSON.stringify(addon)})`;
}

/** Redirect the native binding loaders to the embedded-asset loader. */
export function embeddedAddonsPlugin(): Plugin {
  return {
    name: 'edgefleet-embedded-addons',
    setup(b) {
      b.onLoad({ filter: /[\\/]onnxruntime-node[\\/]dist[\\/]binding\.js$/ }, async (args) => {
        const source = await readFile(args.path, 'utf8');
        const matches = source.match(ORT_REQUIRE)?.length ?? 0;
        if (matches !== 1) {
          throw new Error(`${args.path}: expected one require of the napi-v6 binding, found ${matches}`);
        }
        return { contents: source.replace(ORT_REQUIRE, loaderCall('onnxruntime')), loader: 'js' };
      });
      b.onLoad({ filter: /[\\/]classic-level[\\/]binding\.js$/ }, async (args) => {
        const source = (await readFile(args.path, 'utf8')).trim();
        if (source !== CLASSIC_LEVEL_BINDING) {
          throw new Error(`${args.path}: expected \`${CLASSIC_LEVEL_BINDING}\`, found \`${source}\``);
        }
        return { contents: `module.exports = ${loaderCall('classic-level')};\n`, loader: 'js' };
      });
    },
  };
}

const ZOD_EN = 'export { default as en } from "./en.js";';

/** Drop ws's optional native helpers and zod's non-English locales (see the module header). */
export function trimPlugin(): Plugin {
  return {
    name: 'edgefleet-trim',
    setup(b) {
      b.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, (args) => ({
        path: args.path,
        namespace: 'edgefleet-absent',
      }));
      b.onLoad({ filter: /.*/, namespace: 'edgefleet-absent' }, (args) => ({
        contents: `throw new Error(${JSON.stringify(`${args.path} is not bundled`)});\n`,
        loader: 'js',
      }));
      b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, async (args) => {
        const source = await readFile(args.path, 'utf8');
        if (!source.includes(ZOD_EN)) {
          throw new Error(`${args.path}: expected \`${ZOD_EN}\` among zod's locales`);
        }
        return { contents: `${ZOD_EN}\n`, loader: 'js', resolveDir: dirname(args.path) };
      });
    },
  };
}

function describe(messages: Message[]): string {
  return messages
    .map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`)
    .join('\n');
}

/**
 * Bundle the agent into `outfile`; fails on any esbuild warning (each one is a runtime surprise in a SEA).
 * `entry` replaces agent/sea/entry.ts for another program built the same way (the footprint bench's floor).
 */
export async function bundleAgent(outfile: string, entry: string = ENTRY): Promise<void> {
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    // Error class names show up in logs and in the API's error bodies.
    keepNames: true,
    legalComments: 'eof',
    plugins: [embeddedAddonsPlugin(), trimPlugin()],
    logLevel: 'silent',
  });
  if (result.warnings.length > 0) {
    throw new Error(`esbuild warnings while bundling the agent:\n${describe(result.warnings)}`);
  }
}
