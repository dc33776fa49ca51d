/**
 * Serves the console: `GET /` is the page, `GET /console/<name>-<hash>.<ext>` its script and stylesheet.
 * The browser code (./src, Preact + uPlot) is bundled by esbuild the first time the page is asked for and
 * kept in memory, precompressed (brotli and gzip): no build step before `npm start`, no file written, and
 * nothing fetched from outside — the console works on a fleet with no internet.
 */
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { Hono } from 'hono';

interface Asset {
  type: string;
  raw: Buffer;
  gzip: Buffer;
  br: Buffer;
}

export interface ConsoleBundle {
  html: Asset;
  /** By file name: `app-3F2A1B.js`. */
  assets: Map<string, Asset>;
}

const ENTRY = new URL('./src/main.tsx', import.meta.url).pathname;

function asset(type: string, raw: Buffer): Asset {
  return {
    type,
    raw,
    gzip: gzipSync(raw, { level: 9 }),
    br: brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
  };
}

export async function buildConsole(): Promise<ConsoleBundle> {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    outdir: '/console',
    entryNames: 'app-[hash]',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'silent',
  });
  const assets = new Map<string, Asset>();
  let script = '';
  let style = '';
  for (const file of result.outputFiles) {
    const name = file.path.slice(file.path.lastIndexOf('/') + 1);
    const type = name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
    assets.set(name, asset(type, Buffer.from(file.contents)));
    if (name.endsWith('.js')) script = name;
    if (name.endsWith('.css')) style = name;
  }
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgefleet</title>
<link rel="stylesheet" href="/console/${style}">
</head>
<body>
<div id="app"></div>
<script type="module" src="/console/${script}"></script>
</body>
</html>
`;
  return { html: asset('text/html; charset=utf-8', Buffer.from(html)), assets };
}

const SECURITY_HEADERS = {
  // Only the console's own script runs; inline styles are allowed for the chart library's layout.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function respond(acceptEncoding: string | undefined, a: Asset, cache: string): Response {
  const accepts = (coding: string) => new RegExp(`\\b${coding}\\b`).test(acceptEncoding ?? '');
  const [body, encoding] = accepts('br') ? [a.br, 'br'] : accepts('gzip') ? [a.gzip, 'gzip'] : [a.raw, null];
  const headers: Record<string, string> = {
    ...SECURITY_HEADERS,
    'content-type': a.type,
    'content-length': String(body.length),
    'cache-control': cache,
    vary: 'accept-encoding',
  };
  if (encoding) headers['content-encoding'] = encoding;
  return new Response(new Uint8Array(body), { status: 200, headers });
}

/**
 * The page and its assets, mounted by the composition root. The bundle is built on the first request and kept
 * by this app, not by the module, so each app (each fleet, each test) owns its own; a failed build is retried
 * on the next request.
 */
export function consolePage(): Hono {
  let bundle: Promise<ConsoleBundle> | undefined;
  const consoleBundle = (): Promise<ConsoleBundle> => {
    bundle ??= buildConsole().catch((err: unknown) => {
      bundle = undefined;
      throw err;
    });
    return bundle;
  };
  const app = new Hono();
  app.get('/', async (c) =>
    respond(c.req.header('accept-encoding'), (await consoleBundle()).html, 'no-cache'),
  );
  app.get('/console/:file', async (c) => {
    const found = (await consoleBundle()).assets.get(c.req.param('file'));
    if (!found)
      return c.json(
        { error: { code: 'not_found', message: `no console asset '${c.req.param('file')}'` } },
        404,
      );
    // Names carry a content hash: a new build has new names, so these never go stale.
    return respond(c.req.header('accept-encoding'), found, 'public, max-age=31536000, immutable');
  });
  return app;
}
