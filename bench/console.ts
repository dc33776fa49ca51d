/**
 * What the web console costs with a large fleet, two figures.
 *
 * (a) The devices page: two real fleet servers in this process, one holding 100 devices and one 10,000,
 *     seeded after start with `DeviceRegistry.importRecords` (whole records into the registry's LevelDB
 *     collection, and into the index its device list and overview read), since enrolling through the API
 *     hashes each secret with scrypt. The records are what
 *     enrolled devices look like: tags (site=a..j, line, env, name), the repo's firmware profiles, online,
 *     offline and never-seen devices, one or two active models with versions and a telemetry message.
 *     The requests the devices page makes go over real HTTP (node:http, one keep-alive connection, the
 *     browser's `accept-encoding: gzip, br`): first page, a deep page, a filtered page and searches,
 *     REPEATS times each after a warm-up, the two fleets alternately (which cancels slow drift in the
 *     machine's load); median and p95 of each, and the ratio 10,000/100. The unpaged list is shown beside
 *     them for contrast. Client and servers share this process's event loop, as in the other benches.
 * (b) The overview's transferred size, on the 10,000-device fleet: the console's HTML at `/`, the assets it
 *     names (`<script src>`, `<link href>`, and what those import), then `GET /api/v1/whoami` and
 *     `GET /api/v1/overview` as the overview page calls them; bytes on the wire per resource (the body as
 *     sent, not decompressed), the encoding, and the total. Plus the overview API's time at 10,000 vs 100.
 * Goal: the devices page's API answers at 10,000 devices in a time comparable to 100 (first page, median,
 * within ×3).
 */
import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import type { DeviceRecord } from '../fleet-server/devices/registry.js';
import { hashSecret, randomSecret, type ScryptHash } from '../fleet-server/devices/secrets.js';
import type { FleetServer } from '../fleet-server/main.js';
import { LATENCY_BUCKETS } from '../shared/histogram.js';
import { mulberry32 } from '../shared/onnx/mlp.js';
import type { ActiveModel, TelemetryMessage } from '../shared/protocol/messages.js';
import { startTestFleet, type TestFleet } from '../test/support/fleet.js';

const SMALL = 100;
const LARGE = Number(process.env.BENCH_CONSOLE_DEVICES ?? 10_000);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 200);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
/**
 * A case stops early after this long (with at least MIN_ROUNDS rounds): the unpaged list reads every
 * device and takes a good part of a second at 10,000 devices.
 */
const CASE_SECONDS = Number(process.env.BENCH_CASE_SECONDS ?? 15);
const MIN_ROUNDS = 20;
/** The page size the console's devices page asks for. */
const PAGE = 50;
const GOAL_RATIO = 3;
/** What a browser sends; the console's requests carry it too. */
const ACCEPT_ENCODING = 'gzip, br';
const SITES = 'abcdefghij';

export default async function main(): Promise<void> {
  const small = await startTestFleet([], { logLevel: 'error' });
  const large = await startTestFleet([], { logLevel: 'error' });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const t0 = performance.now();
    const smallIds = await seed(small, SMALL, 1);
    const largeIds = await seed(large, LARGE, 2);
    console.log(
      `console bench: ${SMALL.toLocaleString()} and ${LARGE.toLocaleString()} devices seeded into two fleets ` +
        `in ${((performance.now() - t0) / 1000).toFixed(1)}s; per case ${REPEATS} requests to each after ` +
        `${WARMUP} warm-up, or as many as fit in ${CASE_SECONDS}s (at least ${MIN_ROUNDS}), the fleets ` +
        `alternately, over one keep-alive connection each, accept-encoding: ${ACCEPT_ENCODING}`,
    );
    const pass = await devicesPage({ env: small, ids: smallIds }, { env: large, ids: largeIds }, agent);
    await overview(small, large, agent);
    console.log(`\n${pass}`);
  } finally {
    agent.destroy();
    await small.close();
    await large.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// seeding

/**
 * `count` device records imported into the fleet's registry in batches; returns their ids in key order (the
 * order pages come in). Seeded after start, so the online ones stay online (the server marks every device
 * offline when it starts).
 */
async function seed(env: TestFleet, count: number, seedValue: number): Promise<string[]> {
  const fleet: FleetServer = env.fleet;
  // One real hash, shared: the records carry one of the size they would have; no device ever connects.
  const secret = await hashSecret(randomSecret(32));
  const random = mulberry32(seedValue);
  const profiles = fleet.devices.profileIds().sort();
  const now = Date.now();
  const ids = new Set<string>();
  let batch: DeviceRecord[] = [];
  for (let i = 0; i < count; i++) {
    const device = makeDevice(i, random, profiles, secret, now);
    if (ids.has(device.id)) {
      i--; // a repeated random id: draw again
      continue;
    }
    ids.add(device.id);
    batch.push(device);
    if (batch.length === 1000) {
      await fleet.devices.importRecords(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await fleet.devices.importRecords(batch);
  return [...ids].sort();
}

function makeDevice(
  i: number,
  random: () => number,
  profiles: string[],
  secret: ScryptHash,
  now: number,
): DeviceRecord {
  const hex = Array.from({ length: 12 }, () => Math.floor(random() * 16).toString(16)).join('');
  const site = SITES[i % SITES.length]!;
  const profile = profiles[Math.floor(random() * profiles.length)]!;
  const ep = profile.includes('cuda') || profile.includes('jetson') ? 'cuda' : 'cpu';
  const arch = profile.startsWith('x86_64') ? 'x64' : 'arm64';
  const r = random();
  const status = r < 0.6 ? 'online' : r < 0.9 ? 'offline' : 'never_seen';
  const enrolledAt = new Date(now - (1 + random() * 300) * 86_400_000);
  const lastSeen =
    status === 'online'
      ? new Date(now - random() * 60_000)
      : status === 'offline'
        ? new Date(now - (1 + random() * 72) * 3_600_000)
        : null;
  const models: ActiveModel[] = [];
  if (status !== 'never_seen') {
    models.push({ name: 'detector', version: 3 + Math.floor(random() * 5), executionProvider: ep });
    if (random() < 0.4)
      models.push({ name: 'anomaly', version: 1 + Math.floor(random() * 3), executionProvider: ep });
  }
  const name = `unit-${String(i).padStart(5, '0')}`;
  return {
    id: `dev-${hex}`,
    tags: { site, line: `line-${1 + (i % 4)}`, env: random() < 0.9 ? 'prod' : 'staging', name },
    profile,
    facts: { hostname: `${site}-${name}`, arch, platform: 'linux', agentVersion: '0.1.0' },
    enrolledAt: enrolledAt.toISOString(),
    secret,
    online: status === 'online',
    lastSeen: lastSeen?.toISOString() ?? null,
    agentVersion: status === 'never_seen' ? null : '0.1.0',
    models,
    telemetry: lastSeen ? telemetry(models, lastSeen.getTime(), random) : null,
  };
}

function telemetry(models: ActiveModel[], ts: number, random: () => number): TelemetryMessage {
  return {
    v: 1,
    type: 'telemetry',
    id: `t-${Math.floor(random() * 2 ** 48).toString(16)}`,
    ts,
    windowMs: 60_000,
    models: models.map((m) => {
      const requests = Math.floor(random() * 5000);
      const p50 = 1 + random() * 5;
      const buckets = new Array<number>(LATENCY_BUCKETS).fill(0);
      for (let k = 8; k < 20; k++) buckets[k] = Math.floor((requests / 12) * random());
      return {
        ...m,
        requests,
        errors: random() < 0.05 ? Math.floor(random() * 10) : 0,
        latencyMs: { p50, p95: p50 * 2.5, p99: p50 * 4 },
        latencyBuckets: buckets,
      };
    }),
    process: {
      rssBytes: Math.floor(150e6 + random() * 100e6),
      heapUsedBytes: Math.floor(30e6 + random() * 20e6),
      cpuPercent: random() * 80,
      uptimeS: Math.floor(random() * 1e6),
    },
    device: { loadAvg1: random() * 4, freeMemBytes: Math.floor(random() * 4e9), totalMemBytes: 8e9 },
  };
}

// ---------------------------------------------------------------------------------------------------------
// HTTP: node:http, so bodies arrive as sent (compressed), which fetch would decompress

interface Fetched {
  status: number;
  headers: IncomingHttpHeaders;
  /** Status line and headers, as received. */
  headerBytes: number;
  /** The body as it came over the wire (after any transfer-coding, before any content-encoding). */
  body: Buffer;
  ms: number;
}

function get(url: string, headers: Record<string, string>, agent: Agent): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(url, { headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const ms = performance.now() - t0;
        let headerBytes = `HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage}\r\n\r\n`.length;
        for (let k = 0; k < res.rawHeaders.length; k += 2)
          headerBytes += Buffer.byteLength(`${res.rawHeaders[k]}: ${res.rawHeaders[k + 1]}\r\n`);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          headerBytes,
          body: Buffer.concat(chunks),
          ms,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function decoded(r: Fetched): Buffer {
  switch (r.headers['content-encoding']) {
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(r.body);
    case 'br':
      return brotliDecompressSync(r.body);
    case 'deflate':
      return inflateSync(r.body);
    default:
      return r.body;
  }
}

function apiHeaders(env: TestFleet): Record<string, string> {
  return {
    authorization: `Bearer ${env.fleet.adminToken}`,
    accept: 'application/json',
    'accept-encoding': ACCEPT_ENCODING,
  };
}

// ---------------------------------------------------------------------------------------------------------
// (a) the devices page

interface Side {
  env: TestFleet;
  /** Device ids in key order. */
  ids: string[];
}

interface Case {
  label: string;
  path: (side: Side) => string;
  repeats: number;
}

interface Timing {
  /** Requests timed. */
  n: number;
  median: number;
  p95: number;
  status: number;
  wireBytes: number;
  devices: number | null;
  next: string | null | undefined;
}

async function devicesPage(small: Side, large: Side, agent: Agent): Promise<string> {
  // A substring of one device's id (the middle of the last one): the console's search for a device.
  const rareQuery = (side: Side) => side.ids[side.ids.length - 1]!.slice(6, 12);
  const cases: Case[] = [
    { label: `first page (limit=${PAGE})`, path: () => `/api/v1/devices?limit=${PAGE}`, repeats: REPEATS },
    {
      label: 'deep page (after=an id near the end)',
      path: (s) => `/api/v1/devices?limit=${PAGE}&after=${s.ids[s.ids.length - 60]}`,
      repeats: REPEATS,
    },
    {
      label: 'filtered (status=online&tag=site=c)',
      path: () => `/api/v1/devices?limit=${PAGE}&status=online&tag=${encodeURIComponent('site=c')}`,
      repeats: REPEATS,
    },
    {
      label: 'search, common (q=raspberry)',
      path: () => `/api/v1/devices?limit=${PAGE}&q=raspberry`,
      repeats: REPEATS,
    },
    {
      label: 'search, rare (q=part of one id)',
      path: (s) => `/api/v1/devices?limit=${PAGE}&q=${rareQuery(s)}`,
      repeats: REPEATS,
    },
    { label: 'unpaged list (contrast)', path: () => '/api/v1/devices', repeats: REPEATS },
  ];
  const n = (x: number) => x.toLocaleString();
  console.log(
    `\n(a) the devices page's API: ${n(SMALL)} vs ${n(LARGE)} devices (median and p95 ms, response bytes on the ` +
      `wire, devices returned)\n`,
  );
  const col = (median: string, p95: string, bytes: string, devs: string) =>
    `${median.padStart(15)} ${p95.padStart(7)} ${bytes.padStart(11)} ${devs.padStart(6)}`;
  const header =
    `  ${'request'.padEnd(38)} ${col(`${n(SMALL)}: median`, 'p95', 'bytes', 'devs')}   ` +
    `${col(`${n(LARGE)}: median`, 'p95', 'bytes', 'devs')}   ${'ratio'.padStart(7)} ${'n'.padStart(4)}`;
  console.log(header);
  let firstPage: [Timing, Timing] | undefined;
  for (const c of cases) {
    const [a, b] = await measurePair(c, small, large, agent);
    if (!firstPage) firstPage = [a, b];
    const cell = (t: Timing) =>
      t.status !== 200
        ? col(`HTTP ${t.status}`, '', '', '')
        : col(t.median.toFixed(2), t.p95.toFixed(2), n(t.wireBytes), String(t.devices ?? '?'));
    const ratio = a.status === 200 && b.status === 200 ? `×${(b.median / a.median).toFixed(2)}` : '-';
    console.log(
      `  ${c.label.padEnd(38)} ${cell(a)}   ${cell(b)}   ${ratio.padStart(7)} ${String(b.n).padStart(4)}`,
    );
  }
  console.log(
    `  (ratio: of the medians, ${n(LARGE)}/${n(SMALL)}; n: requests timed on each fleet. Filtered and search pages match in the registry's ` +
      `in-memory index and read only the page's records; where the ${n(SMALL)}-device fleet has fewer ` +
      `matches than a page, its answer is shorter.)`,
  );
  const [a, b] = firstPage!;
  if (a.status !== 200 || b.status !== 200)
    return `  devices page (first page): HTTP ${a.status} / ${b.status}: no figure MISS`;
  const ratio = b.median / a.median;
  return (
    `  devices page, first page of ${PAGE}: median ${b.median.toFixed(2)} ms at ${n(LARGE)} devices vs ` +
    `${a.median.toFixed(2)} ms at ${n(SMALL)}, ×${ratio.toFixed(2)} (goal: comparable, within ×${GOAL_RATIO}) ` +
    `${ratio <= GOAL_RATIO ? 'PASS' : 'MISS'}`
  );
}

/** Warm-up, then the case on both fleets alternately. */
async function measurePair(c: Case, small: Side, large: Side, agent: Agent): Promise<[Timing, Timing]> {
  const sides = [small, large];
  const urls = sides.map((s) => `${s.env.fleet.httpUrl}${c.path(s)}`);
  const headers = sides.map((s) => apiHeaders(s.env));
  const w0 = performance.now();
  for (let i = 0; i < WARMUP && (i < 2 || performance.now() - w0 < 3000); i++)
    for (let s = 0; s < 2; s++) await get(urls[s]!, headers[s]!, agent);
  const times: number[][] = [[], []];
  const last: Fetched[] = [];
  const t0 = performance.now();
  for (let i = 0; i < c.repeats && (i < MIN_ROUNDS || performance.now() - t0 < CASE_SECONDS * 1000); i++) {
    for (let s = 0; s < 2; s++) {
      const r = await get(urls[s]!, headers[s]!, agent);
      times[s]!.push(r.ms);
      last[s] = r;
    }
  }
  return [timing(times[0]!, last[0]!), timing(times[1]!, last[1]!)];
}

function timing(ms: number[], last: Fetched): Timing {
  let devices: number | null = null;
  let next: string | null | undefined;
  if (last.status === 200) {
    const body = JSON.parse(decoded(last).toString('utf8')) as { devices?: unknown[]; next?: string | null };
    devices = body.devices?.length ?? null;
    next = body.next;
  }
  return {
    n: ms.length,
    median: quantile(ms, 0.5),
    p95: quantile(ms, 0.95),
    status: last.status,
    wireBytes: last.body.length,
    devices,
    next,
  };
}

function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

// ---------------------------------------------------------------------------------------------------------
// (b) the overview

interface Resource {
  path: string;
  kind: string;
  r: Fetched;
}

async function overview(small: TestFleet, large: TestFleet, agent: Agent): Promise<void> {
  const base = large.fleet.httpUrl;
  const browser = { accept: '*/*', 'accept-encoding': ACCEPT_ENCODING };
  console.log(
    `\n(b) the overview page on the ${LARGE.toLocaleString()}-device fleet: what the browser transfers ` +
      `(accept-encoding: ${ACCEPT_ENCODING})\n`,
  );
  const resources: Resource[] = [];
  const notes: string[] = [];
  const html = await get(`${base}/`, { ...browser, accept: 'text/html' }, agent);
  resources.push({ path: '/', kind: 'html', r: html });
  if (html.status !== 200 || !String(html.headers['content-type'] ?? '').includes('text/html')) {
    notes.push(
      `the console is not served at / (HTTP ${html.status}, ${html.headers['content-type'] ?? 'no content-type'}): ` +
        'no assets measured; only the API calls below',
    );
  } else {
    // Breadth-first over what the page names, and what its scripts and styles import in turn.
    const queue = assetsOf(decoded(html).toString('utf8'), 'html').map((u) => new URL(u, `${base}/`));
    const seen = new Set<string>(['/']);
    while (queue.length > 0) {
      const url = queue.shift()!;
      if (url.origin !== new URL(base).origin) {
        notes.push(`not same-origin, not measured: ${url.href}`);
        continue;
      }
      const key = url.pathname + url.search;
      if (seen.has(key)) continue;
      seen.add(key);
      const r = await get(url.href, browser, agent);
      const type = String(r.headers['content-type'] ?? '');
      const kind = type.includes('javascript')
        ? 'script'
        : type.includes('css')
          ? 'style'
          : type.split(';')[0]!;
      resources.push({ path: key, kind, r });
      if (r.status === 200 && (kind === 'script' || kind === 'style'))
        for (const next of assetsOf(decoded(r).toString('utf8'), kind)) queue.push(new URL(next, url));
    }
  }
  for (const path of ['/api/v1/whoami', '/api/v1/overview']) {
    const r = await get(`${base}${path}`, apiHeaders(large), agent);
    resources.push({ path, kind: 'api', r });
    if (r.status === 404) notes.push(`${path} answers 404: not there yet (counted as its 404 answer)`);
  }

  console.log(
    `  ${'resource'.padEnd(40)} ${'kind'.padEnd(8)} ${'status'.padStart(6)} ${'encoding'.padEnd(9)} ` +
      `${'wire bytes'.padStart(11)} ${'decoded'.padStart(11)} ${'headers'.padStart(8)}`,
  );
  let wire = 0;
  let plain = 0;
  let heads = 0;
  for (const { path, kind, r } of resources) {
    const body = decoded(r).length;
    wire += r.body.length;
    plain += body;
    heads += r.headerBytes;
    console.log(
      `  ${path.padEnd(40)} ${kind.padEnd(8)} ${String(r.status).padStart(6)} ` +
        `${String(r.headers['content-encoding'] ?? 'identity').padEnd(9)} ${r.body.length.toLocaleString().padStart(11)} ` +
        `${body.toLocaleString().padStart(11)} ${r.headerBytes.toLocaleString().padStart(8)}`,
    );
  }
  console.log(
    `  ${'total'.padEnd(40)} ${`${resources.length} req`.padEnd(8)} ${''.padStart(6)} ${''.padEnd(9)} ` +
      `${wire.toLocaleString().padStart(11)} ${plain.toLocaleString().padStart(11)} ${heads.toLocaleString().padStart(8)}`,
  );
  console.log(
    `  overview transferred: ${(wire / 1024).toFixed(1)} KiB of bodies on the wire ` +
      `(${((wire + heads) / 1024).toFixed(1)} KiB with headers; ${(plain / 1024).toFixed(1)} KiB decoded); ` +
      'the live event stream (/api/v1/events), if the page opens one, is not counted',
  );
  for (const note of notes) console.log(`  note: ${note}`);

  // The overview API's time, as the devices page's above.
  const sides: Side[] = [
    { env: small, ids: [] },
    { env: large, ids: [] },
  ];
  const [a, b] = await measurePair(
    { label: 'overview', path: () => '/api/v1/overview', repeats: REPEATS },
    sides[0]!,
    sides[1]!,
    agent,
  );
  if (a.status !== 200 || b.status !== 200) {
    console.log(
      `\n  GET /api/v1/overview: HTTP ${a.status} at ${SMALL} devices, HTTP ${b.status} at ${LARGE.toLocaleString()}: no timing`,
    );
    return;
  }
  console.log(
    `\n  GET /api/v1/overview: median ${b.median.toFixed(2)} ms (p95 ${b.p95.toFixed(2)}) at ${LARGE.toLocaleString()} ` +
      `devices vs ${a.median.toFixed(2)} ms (p95 ${a.p95.toFixed(2)}) at ${SMALL}, ×${(b.median / a.median).toFixed(2)} ` +
      `(${b.n} requests each); ` +
      `${b.wireBytes.toLocaleString()} vs ${a.wireBytes.toLocaleString()} bytes on the wire`,
  );
}

/** Same-document references a browser loads: script and stylesheet/preload links; imports; CSS urls. */
function assetsOf(text: string, kind: 'html' | 'script' | 'style'): string[] {
  const out: string[] = [];
  const add = (u: string | undefined) => {
    if (u && !u.startsWith('data:') && !u.startsWith('#')) out.push(u);
  };
  if (kind === 'html') {
    for (const m of text.matchAll(/<script\b[^>]*\bsrc\s*=\s*["']?([^"'\s>]+)/gi)) add(m[1]);
    for (const m of text.matchAll(/<link\b[^>]*>/gi)) {
      const rel = /\brel\s*=\s*["']?([^"'>]+)/i.exec(m[0])?.[1]?.toLowerCase() ?? '';
      if (!/stylesheet|modulepreload|preload|icon|manifest/.test(rel)) continue;
      add(/\bhref\s*=\s*["']?([^"'\s>]+)/i.exec(m[0])?.[1]);
    }
    for (const m of text.matchAll(/<style\b[^>]*>([\s\S]*?)<\/style>/gi))
      out.push(...assetsOf(m[1]!, 'style'));
  } else if (kind === 'script') {
    // Static imports only: a dynamic import() is another page's code, loaded when that page opens.
    for (const m of text.matchAll(
      /(?:^|[;\s}])(?:import|export)\s*(?:[\w*{}\s,$]+from\s*)?["']([^"']+)["']/g,
    )) {
      if (/^(\.{0,2}\/|https?:)/.test(m[1]!)) add(m[1]);
    }
  } else {
    for (const m of text.matchAll(/@import\s+(?:url\()?\s*["']?([^"')\s;]+)/g)) add(m[1]);
    for (const m of text.matchAll(/url\(\s*["']?([^"')]+)["']?\s*\)/g)) add(m[1]);
  }
  return out;
}
