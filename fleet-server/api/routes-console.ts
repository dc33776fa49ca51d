/**
 * Reads the browser console is built on (viewer): who the token is, the fleet at a glance (views/overview.ts),
 * one device's recent telemetry and its update history. Each answers one screen in one request.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { PrincipalSchema } from '../../shared/api/audit.js';
import {
  DeviceTelemetrySchema,
  DeviceUpdatesSchema,
  OverviewSchema,
  TelemetryQuerySchema,
} from '../../shared/api/console.js';
import { ValidationError } from '../../shared/errors.js';
import { countOf, emptyBuckets, mergeBuckets, quantileOf } from '../../shared/histogram.js';
import type { TelemetryWindow } from '../telemetry/windows.js';
import { fleetOverview } from '../views/overview.js';
import type { Env } from './auth.js';
import { requireRole } from './auth.js';
import type { ApiDeps } from './deps.js';
import type { RouteDoc } from './openapi.js';

/** What these routes reach of the fleet. */
type Deps = Pick<ApiDeps, 'audit' | 'devices' | 'drift' | 'rollouts' | 'telemetry' | 'tokens' | 'training'>;

export function consoleRoutes(deps: Deps): Hono<Env> {
  const app = new Hono<Env>();

  app.get('/whoami', requireRole(deps.tokens, 'viewer'), (c) => {
    const { name, role } = c.get('principal');
    return c.json({ name, role });
  });

  app.get('/overview', requireRole(deps.tokens, 'viewer'), async (c) => c.json(await fleetOverview(deps)));

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
    response: PrincipalSchema,
    summary: "The calling token's name and role",
    access: 'viewer',
    tag: 'access',
  },
  {
    method: 'get',
    path: '/overview',
    response: OverviewSchema,
    summary:
      'The fleet at a glance: devices by status and profile, model versions in use, rollouts, drift alerts, training, recent events',
    access: 'viewer',
    tag: 'fleet',
  },
  {
    method: 'get',
    path: '/devices/:id/telemetry',
    response: DeviceTelemetrySchema,
    summary: "One device's telemetry windows since sinceMs (default: the last hour), oldest first",
    access: 'viewer',
    tag: 'devices',
    query: TelemetryQuerySchema,
  },
  {
    method: 'get',
    path: '/devices/:id/updates',
    response: DeviceUpdatesSchema,
    summary: "Every rollout that targets the device, with the device's state in it, newest first",
    access: 'viewer',
    tag: 'devices',
  },
];
