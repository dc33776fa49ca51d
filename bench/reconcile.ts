/**
 * What one device report costs the rollout rules, at 1k / 10k / 50k devices in a step.
 *
 * A step of N devices (an all-at-once rollout: setPercent 100, every device sent its install), then device
 * reports one after another, each followed by the reconcile the controller runs on it:
 * - now: `planUpdate` + `planReconcile` on a RolloutBook, each plan applied (what the controller does per
 *   report, persistence aside);
 * - before: the implementation this issue replaced — `applyUpdate` + `reconcile` on whole records, from
 *   fleet-server/rollouts/state.ts at commit BASELINE, checked out of git into .bench-baseline/ for this
 *   run (with the shared/ it imported), so both run on this machine in the same process.
 * Each device reports twice (downloading, then active). Mean time per report over a batch — for the current
 * code the median of three batches, after an unmeasured run at every size (JIT); the old code is slow enough at 50k that it gets a time budget instead of a count. Persistence is not measured: the controller still
 * writes the whole record per report (the per-device store is issue 14's).
 * Goals (issue 13): flat in the number of devices (≤ 2× from 1k to 50k) and ≥ 100× faster than before at 10k.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RolloutBook } from '../fleet-server/rollouts/book.js';
import type { FleetView } from '../fleet-server/rollouts/measure.js';
import { planReconcile, planUpdate } from '../fleet-server/rollouts/reconcile.js';
import { newRollout, type RolloutRecord } from '../fleet-server/rollouts/record.js';
import { presetSpec } from '../fleet-server/rollouts/spec.js';
import type { UpdateMessage } from '../shared/protocol/messages.js';

const BASELINE = process.env.BENCH_RECONCILE_BASELINE ?? 'cf9a7a6';
const SIZES = (process.env.BENCH_RECONCILE_SIZES ?? '1000,10000,50000').split(',').map(Number);
const REPORTS = Number(process.env.BENCH_REPORTS ?? 2000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 500);
/** The old code per size: at most this many reports, or this long. */
const OLD_REPORTS = Number(process.env.BENCH_OLD_REPORTS ?? 300);
const OLD_SECONDS = Number(process.env.BENCH_OLD_SECONDS ?? 8);

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NONE: FleetView = { traffic: new Map(), shadow: new Map() };
const T0 = Date.parse('2026-12-01T00:00:00.000Z');

interface OldRules {
  newRollout: typeof newRollout;
  applyUpdate: (r: RolloutRecord, deviceId: string, report: UpdateMessage, now: Date) => RolloutRecord;
  reconcile: (
    r: RolloutRecord,
    view: FleetView,
    now: Date,
    newId: () => string,
  ) => { rollout: RolloutRecord; commands: unknown[] };
}

/** The baseline's rollout rules, from git, into a folder of their own (ignored by git). */
async function loadBaseline(): Promise<OldRules> {
  const dir = join(ROOT, '.bench-baseline', BASELINE);
  const files = execFileSync(
    'git',
    ['ls-tree', '-r', '--name-only', BASELINE, 'shared', 'fleet-server/rollouts'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  )
    .split('\n')
    .filter((f) => f.endsWith('.ts'));
  if (!files.includes('fleet-server/rollouts/state.ts'))
    throw new Error(`commit ${BASELINE} has no fleet-server/rollouts/state.ts to compare with`);
  for (const file of files) {
    const target = join(dir, file);
    if (existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, execFileSync('git', ['show', `${BASELINE}:${file}`], { cwd: ROOT }));
  }
  return (await import(pathToFileURL(join(dir, 'fleet-server/rollouts/state.ts')).href)) as OldRules;
}

function ids(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `dev-${String(i).padStart(6, '0')}`);
}

/** A fixed shuffle of cohort order, as the cohort hash gives (the hash itself is not what is measured). */
function spread(id: string): number {
  return ((Number(id.slice(4)) * 2_654_435_761) % 2 ** 32) / 2 ** 32;
}

/** What each device reports, in order: progress, then done (two reports per device). */
const STATES: UpdateMessage['state'][] = ['downloading', 'active'];

function report(
  r: { id: string; model: RolloutRecord['model'] },
  commandId: string,
  state: UpdateMessage['state'],
): UpdateMessage {
  return {
    v: 1,
    type: 'update',
    id: 'u',
    ts: 0,
    commandId,
    rolloutId: r.id,
    model: r.model,
    state,
    reason: null,
    executionProvider: 'cpu',
    serving: null,
  };
}

function record(make: typeof newRollout, n: number): RolloutRecord {
  return make({
    id: 'ro-bench',
    model: { name: 'clf', version: 2 },
    targets: { tags: { site: 'a' } },
    spec: presetSpec('all-at-once', { deviceTimeoutS: 900 }),
    deviceIds: ids(n),
    cohortKey: spread,
    actor: 'bench',
    now: new Date(T0),
  });
}

/** The i-th report of a run: which device, in which state (each device: downloading, then active). */
function nth(order: readonly string[], i: number): { id: string; state: UpdateMessage['state'] } {
  return { id: order[i % order.length]!, state: STATES[Math.floor(i / order.length)] ?? 'active' };
}

/** Mean ms per report with the current rules, over `count` reports after `warmup` unmeasured ones. */
function measureNow(n: number, warmup = WARMUP, count = REPORTS): { perReportMs: number; reports: number } {
  let seq = 0;
  const newId = () => `c${++seq}`;
  const book = RolloutBook.from(record(newRollout, n));
  book.apply(planReconcile(book, NONE, new Date(T0), newId)); // every device sent its install
  const order = ids(n);
  const total = Math.min(n * STATES.length, warmup + count);
  let started = performance.now();
  for (let i = 0; i < total; i++) {
    if (i === warmup) started = performance.now();
    const { id, state } = nth(order, i);
    const now = new Date(T0 + 1000 + i);
    const device = planUpdate(book, id, report(book.head, book.get(id)!.commandId!, state), now);
    if (device)
      book.apply({ head: book.head, changes: new Map([[id, device]]), commands: [], nextCheckAt: null });
    book.apply(planReconcile(book, NONE, now, newId));
  }
  const reports = total - Math.min(warmup, total);
  return { perReportMs: (performance.now() - started) / reports, reports };
}

/** Mean ms per report with the baseline's rules. */
function measureBefore(old: OldRules, n: number): { perReportMs: number; reports: number } {
  let seq = 0;
  const newId = () => `c${++seq}`;
  let r = old.reconcile(record(old.newRollout, n), NONE, new Date(T0), newId).rollout;
  const order = ids(n);
  const started = performance.now();
  let reports = 0;
  while (reports < Math.min(n, OLD_REPORTS) && performance.now() - started < OLD_SECONDS * 1000) {
    const { id, state } = nth(order, reports);
    const now = new Date(T0 + 1000 + reports);
    const commandId = r.devices.find((d) => d.deviceId === id)!.commandId!;
    r = old.applyUpdate(r, id, report(r, commandId, state), now);
    r = old.reconcile(r, NONE, now, newId).rollout;
    reports++;
  }
  return { perReportMs: (performance.now() - started) / reports, reports };
}

const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`);

export default async function main(): Promise<void> {
  const old = await loadBaseline();
  // Warm both up (JIT: the first thousands of reports run slower): every size once, unmeasured.
  for (const n of SIZES) measureNow(n);
  measureBefore(old, 1000);
  console.log(`reconcile per device report — now vs ${BASELINE} (before this change), same process`);
  console.log('devices   now/report   (reports ×3)   before/report   (reports)   speed-up');
  const rows: { n: number; now: number; before: number }[] = [];
  for (const n of SIZES) {
    // The current code three times (median), interleaved with nothing else: it takes milliseconds in all.
    const runs = [measureNow(n), measureNow(n), measureNow(n)].sort((x, y) => x.perReportMs - y.perReportMs);
    const now = runs[1]!;
    const before = measureBefore(old, n);
    rows.push({ n, now: now.perReportMs, before: before.perReportMs });
    console.log(
      `${String(n).padStart(7)}   ${fmt(now.perReportMs).padStart(10)}   ${String(now.reports).padStart(12)}   ${fmt(before.perReportMs).padStart(13)}   ${String(before.reports).padStart(9)}   ${(before.perReportMs / now.perReportMs).toFixed(0).padStart(7)}×`,
    );
  }
  const first = rows[0]!;
  const last = rows.at(-1)!;
  const flat = last.now / first.now;
  console.log(
    `flatness: ${last.n} vs ${first.n} devices ×${flat.toFixed(2)} (goal ≤ 2): ${flat <= 2 ? 'PASS' : 'FAIL'}`,
  );
  const at10k = rows.find((r) => r.n === 10_000);
  if (at10k) {
    const speedUp = at10k.before / at10k.now;
    console.log(
      `speed-up at 10,000 devices: ×${speedUp.toFixed(0)} (goal ≥ 100): ${speedUp >= 100 ? 'PASS' : 'FAIL'}`,
    );
  }
}
