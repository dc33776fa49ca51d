/**
 * Reads the browser console is built on (viewer): who the token is, the fleet at a glance, one device's
 * recent telemetry and its update history. Each answers one screen in one request; the overview counts
 * devices from the registry's in-memory index, reading no device record, so it stays cheap at 10,000.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { ValidationError } from '../../shared/errors.js';
import { countOf, emptyBuckets, mergeBuckets, quantileOf } from '../../shared/histogram.js';
import type { DeviceSummary } from '../devices/registry.js';
import type { DeviceDrift } from '../drift/reports.js';
import { isFinal, type RolloutRecord } from '../rollouts/record.js';
import type { TelemetryWindow } from '../telemetry/windows.js';
import type { ApiDeps, Env } from './app.js';
import { requireRole } from './app.js';
import type { RouteDoc } from './openapi.js';

const TelemetryQuerySchema = z.object({
  /** Windows received at or after this time (ms since epoch); the last hour when absent. */
  sinceMs: z.coerce.number().int().nonnegative().optional(),
});

const RECENT_ROLLOUTS = 5;
const RECENT_EVENTS = 15;

export function consoleRoutes(deps: ApiDeps): Hono<Env> {
  const app = new Hono<Env>();

  app.get('/whoami', requireRole(deps.tokens, 'viewer'), (c) => {
    const { name, role } = c.get('principal');
    return c.json({ name, role });
  });

  app.get('/overview', requireRole(deps.tokens, 'viewer'), async (c) => {
    const [devices, rollouts, drift, runs, events] = await Promise.all([
      deps.devices.summary(),
      deps.rollouts.list(),
      deps.drift.devices(),
      deps.training.list(),
      deps.audit.recent(RECENT_EVENTS),
    ]);
    const finished = rollouts
      .filter((r) => isFinal(r.status.phase))
      .sort((a, b) => b.status.updatedAt.localeCompare(a.status.updatedAt));
    return c.json({
      ...deviceCounts(devices, deps.devices.profileIds()),
      rollouts: {
        active: rollouts.filter((r) => !isFinal(r.status.phase)).map(rolloutBrief),
        recent: finished.slice(0, RECENT_ROLLOUTS).map(rolloutBrief),
      },
      drift: { alerts: driftAlerts(drift) },
      training: { running: runs.filter((r) => r.status === 'running').length },
      events: events.map(({ seq, at, actor, action, target, status }) => ({
        seq,
        at,
        actor,
        action,
        target,
        status,
      })),
    });
  });

  app.get('/devices/:id/telemetry', requireRole(deps.tokens, 'viewer'), async (c) => {
    const query = TelemetryQuerySchema.safeParse({ sinceMs: c.req.query('sinceMs') });
    if (!query.success)
      throw new ValidationError(`telemetry query: ${z.prettifyError(query.error).replaceAll('\n', '; ')}`);
    const device = await deps.devices.get(c.req.param('id'));
    const since = query.data.sinceMs ?? Date.now() - 3600_000;
    return c.json({ windows: (await deps.telemetry.since(device.id, since)).map(windowView) });
  });

  // Rollouts are few (one live per model); scanning them is cheaper than keeping an index per device.
  app.get('/devices/:id/updates', requireRole(deps.tokens, 'viewer'), async (c) => {
    const device = await deps.devices.get(c.req.param('id'));
    const updates = [];
    for (const rollout of await deps.rollouts.list()) {
      const d = rollout.devices.find((x) => x.deviceId === device.id);
      if (!d) continue;
      updates.push({
        rolloutId: rollout.id,
        model: { name: rollout.model.name, version: rollout.model.version },
        phase: rollout.status.phase,
        state: d.state,
        mode: d.mode,
        reason: d.reason,
        executionProvider: d.executionProvider,
        updatedAt: d.updatedAt,
      });
    }
    return c.json({ updates });
  });

  return app;
}

/** Devices by status and profile (every known profile, busiest first), and the model versions they run. */
function deviceCounts(summary: DeviceSummary, knownProfiles: readonly string[]) {
  const { total, online, offline, neverSeen } = summary;
  const profiles = new Map<string, number>(knownProfiles.map((p) => [p, 0]));
  for (const [profile, n] of summary.profiles) profiles.set(profile, n);
  return {
    devices: { total, online, offline, neverSeen },
    profiles: [...profiles]
      .map(([profile, n]) => ({ profile, devices: n }))
      .sort((a, b) => b.devices - a.devices || a.profile.localeCompare(b.profile)),
    versions: [...summary.versions].sort((a, b) => a.model.localeCompare(b.model) || b.version - a.version),
  };
}

function rolloutBrief(r: RolloutRecord) {
  return {
    id: r.id,
    model: { name: r.model.name, version: r.model.version },
    phase: r.status.phase,
    step: r.status.step,
    steps: r.spec.steps.length,
    createdAt: r.createdAt,
  };
}

/** Model versions with at least one device whose latest report says drift (reporting: those with a verdict). */
function driftAlerts(reports: readonly DeviceDrift[]) {
  const byVersion = new Map<
    string,
    { model: string; version: number; devicesDrifted: number; devicesReporting: number }
  >();
  for (const r of reports) {
    if (r.verdict === 'insufficient_data') continue;
    const key = `${r.model}@${r.version}`;
    const entry = byVersion.get(key) ?? {
      model: r.model,
      version: r.version,
      devicesDrifted: 0,
      devicesReporting: 0,
    };
    entry.devicesReporting++;
    if (r.verdict === 'drift') entry.devicesDrifted++;
    byVersion.set(key, entry);
  }
  return [...byVersion.values()]
    .filter((a) => a.devicesDrifted > 0)
    .sort((a, b) => a.model.localeCompare(b.model) || b.version - a.version);
}

/** One window as the console charts it: counts summed over models, quantiles of the merged histograms. */
function windowView(w: TelemetryWindow) {
  let requests = 0;
  let errors = 0;
  const latency = emptyBuckets();
  for (const m of w.models) {
    requests += m.requests;
    errors += m.errors;
    // A model without a histogram counts its requests but adds nothing to the quantiles.
    if (m.latencyBuckets) mergeBuckets(latency, m.latencyBuckets);
  }
  const measured = countOf(latency) > 0;
  return {
    at: new Date(w.receivedAt).toISOString(),
    windowMs: w.windowMs,
    requests,
    errors,
    p50Ms: measured ? quantileOf(latency, 0.5) : null,
    p99Ms: measured ? quantileOf(latency, 0.99) : null,
    rps: requests / (w.windowMs / 1000),
    cpuPercent: w.process?.cpuPercent ?? null,
    rssBytes: w.process?.rssBytes ?? null,
    heapUsedBytes: w.process?.heapUsedBytes ?? null,
    loadAvg1: w.device?.loadAvg1 ?? null,
    freeMemBytes: w.device?.freeMemBytes ?? null,
    totalMemBytes: w.device?.totalMemBytes ?? null,
  };
}

export const consoleRouteDocs: RouteDoc[] = [
  {
    method: 'get',
    path: '/whoami',
    summary: "The calling token's name and role",
    access: 'viewer',
    tag: 'access',
  },
  {
    method: 'get',
    path: '/overview',
    summary:
      'The fleet at a glance: devices by status and profile, model versions in use, rollouts, drift alerts, training, recent events',
    access: 'viewer',
    tag: 'fleet',
  },
  {
    method: 'get',
    path: '/devices/:id/telemetry',
    summary: "One device's telemetry windows since sinceMs (default: the last hour), oldest first",
    access: 'viewer',
    tag: 'devices',
    query: TelemetryQuerySchema,
  },
  {
    method: 'get',
    path: '/devices/:id/updates',
    summary: "Every rollout that targets the device, with the device's state in it, newest first",
    access: 'viewer',
    tag: 'devices',
  },
];
