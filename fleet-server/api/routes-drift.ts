/**
 * Drift and the retrain loop. Reading (viewer): `GET /drift` — per model, drift by version (the canary and
 * control cohorts of a rollout are versions) and per feature, and each device's latest report;
 * `GET /drift/:model/devices/:deviceId` — one device's latest report (a device page reads one record, not the
 * model's whole fleet); `GET /drift/:model/versions/:version/timeline` — drift over time; retrain policies and records.
 * Acting (operator): set a task's retrain policy, trigger a retrain, approve a retrain's canary.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import {
  DeviceDriftSchema,
  DriftOverviewSchema,
  DriftQuerySchema,
  DriftTimelineSchema,
  RetrainListSchema,
  RetrainPolicySchema,
  RetrainSchema,
  StoredPolicySchema,
  TimelineQuerySchema,
  TriggerRetrainRequestSchema,
} from '../../shared/api/drift.js';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { type DeviceDrift, summarize } from '../drift/reports.js';
import type { Env } from './auth.js';
import { requireRole } from './auth.js';
import type { ApiDeps } from './deps.js';
import { jsonBody } from './errors.js';
import type { RouteDoc } from './openapi.js';
import { modelName } from './routes-models.js';
import { taskName } from './routes-pool.js';

/** What these routes reach of the fleet. */
type Deps = Pick<ApiDeps, 'devices' | 'drift' | 'log' | 'models' | 'pool' | 'retrains' | 'tokens'>;

export function driftRoutes(deps: Deps): Hono<Env> {
  const app = new Hono<Env>();

  app.get('/drift', requireRole(deps.tokens, 'viewer'), async (c) => {
    const { task, model, cohort } = DriftQuerySchema.parse(c.req.query());
    const cohortOf = await cohortKey(deps, cohort);
    let names: string[];
    if (task !== undefined) names = [(await deps.pool.getTask(taskName(task))).model];
    else if (model !== undefined) names = [modelName(model)];
    else names = await deps.drift.models();
    const models = [];
    for (const name of names) {
      const aliases = await deps.models.aliases(name);
      const owner = await deps.pool.taskForModel(name);
      const latest = owner ? (await deps.retrains.list(owner.name))[0] : undefined;
      const devices = await deps.drift.devices(name);
      models.push({
        model: name,
        task: owner?.name ?? null,
        production: aliases.production?.version ?? null,
        candidate: aliases.candidate?.version ?? null,
        versions: await deps.drift.byVersion(name),
        ...(cohortOf ? { cohorts: cohortsOf(devices, cohortOf) } : {}),
        devices,
        retrain: latest ?? null,
      });
    }
    return c.json({ models });
  });

  app.get('/drift/:model/devices/:deviceId', requireRole(deps.tokens, 'viewer'), async (c) => {
    const name = modelName(c.req.param('model'));
    const deviceId = c.req.param('deviceId');
    const report = await deps.drift.device(name, deviceId);
    if (!report) {
      throw new NotFoundError(`drift report for ${name} from device`, deviceId);
    }
    return c.json(report);
  });

  app.get('/drift/:model/versions/:version/timeline', requireRole(deps.tokens, 'viewer'), async (c) => {
    const name = modelName(c.req.param('model'));
    const version = Number(c.req.param('version'));
    if (!Number.isInteger(version) || version < 1)
      throw new ValidationError(`version must be a positive integer, got '${c.req.param('version')}'`);
    const query = TimelineQuerySchema.safeParse({
      sinceS: c.req.query('sinceS'),
      bucketS: c.req.query('bucketS'),
    });
    if (!query.success)
      throw new ValidationError(`timeline query: ${z.prettifyError(query.error).replaceAll('\n', '; ')}`);
    const since = Date.now() - query.data.sinceS * 1000;
    return c.json({
      model: name,
      version,
      bucketS: query.data.bucketS,
      points: await deps.drift.timeline(name, version, since, query.data.bucketS * 1000),
    });
  });

  app.get('/tasks/:name/retrain-policy', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json(await deps.retrains.policy(taskName(c.req.param('name')))),
  );

  app.put('/tasks/:name/retrain-policy', requireRole(deps.tokens, 'operator'), async (c) => {
    const body = await jsonBody(c, z.record(z.string(), z.unknown()));
    const stored = await deps.retrains.setPolicy(
      taskName(c.req.param('name')),
      body,
      c.get('principal').name,
    );
    deps.log.info({ task: stored.task, policy: stored.policy, by: stored.updatedBy }, 'retrain policy set');
    return c.json(stored);
  });

  app.post('/tasks/:name/retrain', requireRole(deps.tokens, 'operator'), async (c) => {
    const body = await jsonBody(c, TriggerRetrainRequestSchema);
    const principal = c.get('principal').name;
    const record = await deps.retrains.trigger(
      taskName(c.req.param('name')),
      principal,
      body.reason ?? `manual trigger by ${principal}`,
    );
    return c.json(record, 202);
  });

  app.get('/retrains', requireRole(deps.tokens, 'viewer'), async (c) => {
    const task = c.req.query('task');
    return c.json({ retrains: await deps.retrains.list(task === undefined ? undefined : taskName(task)) });
  });

  app.get('/retrains/:id', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json(await deps.retrains.get(c.req.param('id'))),
  );

  app.post('/retrains/:id/approve', requireRole(deps.tokens, 'operator'), async (c) =>
    c.json(await deps.retrains.approve(c.req.param('id'), c.get('principal').name)),
  );

  return app;
}

/**
 * `?cohort=profile` or `?cohort=tag:<key>`: each device's cohort by its firmware profile or a tag's value
 * (`(none)` without the tag). Unset: no cohort breakdown.
 */
async function cohortKey(
  deps: Deps,
  raw: string | undefined,
): Promise<((deviceId: string) => string) | null> {
  if (raw === undefined) return null;
  const tag = /^tag:([A-Za-z0-9_.-]{1,64})$/.exec(raw)?.[1];
  if (raw !== 'profile' && !tag)
    throw new ValidationError(`cohort must be 'profile' or 'tag:<key>', got '${raw}'`, {
      code: 'invalid_cohort',
    });
  const byId = new Map((await deps.devices.list()).map((d) => [d.id, d]));
  return (deviceId) => {
    const device = byId.get(deviceId);
    if (!device) return '(unknown device)';
    return tag ? (device.tags[tag] ?? '(none)') : device.profile;
  };
}

/** Latest reports grouped by version and cohort, newest version first, cohorts by name. */
function cohortsOf(devices: DeviceDrift[], cohortOf: (deviceId: string) => string) {
  const groups = new Map<string, { version: number; cohort: string; list: DeviceDrift[] }>();
  for (const d of devices) {
    const cohort = cohortOf(d.deviceId);
    const key = `${d.version}\u0000${cohort}`;
    const group = groups.get(key) ?? { version: d.version, cohort, list: [] };
    group.list.push(d);
    groups.set(key, group);
  }
  return [...groups.values()]
    .sort((a, b) => b.version - a.version || a.cohort.localeCompare(b.cohort))
    .map((g) => ({ cohort: g.cohort, ...summarize(g.version, g.list) }));
}

export const driftRouteDocs: RouteDoc[] = [
  {
    method: 'get',
    path: '/drift',
    response: DriftOverviewSchema,
    summary: 'Drift per model: by version, cohort and feature, and per device',
    access: 'viewer',
    tag: 'drift',
    query: DriftQuerySchema,
  },
  {
    method: 'get',
    path: '/drift/:model/devices/:deviceId',
    response: DeviceDriftSchema,
    summary: "One device's latest drift report for a model",
    access: 'viewer',
    tag: 'drift',
  },
  {
    method: 'get',
    path: '/drift/:model/versions/:version/timeline',
    response: DriftTimelineSchema,
    summary: 'Drift of one version over time',
    access: 'viewer',
    tag: 'drift',
    query: TimelineQuerySchema,
  },
  {
    method: 'get',
    path: '/tasks/:name/retrain-policy',
    response: StoredPolicySchema,
    summary: "A task's retrain policy",
    access: 'viewer',
    tag: 'drift',
  },
  // The body is checked by the retrain loop against this schema (its errors say `invalid_policy`).
  {
    method: 'put',
    path: '/tasks/:name/retrain-policy',
    response: StoredPolicySchema,
    summary: "Set a task's retrain policy",
    access: 'operator',
    tag: 'drift',
    body: RetrainPolicySchema,
  },
  {
    method: 'post',
    path: '/tasks/:name/retrain',
    response: RetrainSchema,
    summary: 'Retrain a task now',
    access: 'operator',
    tag: 'drift',
    body: TriggerRetrainRequestSchema,
    success: 202,
  },
  {
    method: 'get',
    path: '/retrains',
    response: RetrainListSchema,
    summary: 'Retrains, newest first',
    access: 'viewer',
    tag: 'drift',
  },
  {
    method: 'get',
    path: '/retrains/:id',
    response: RetrainSchema,
    summary: 'One retrain and every step it took',
    access: 'viewer',
    tag: 'drift',
  },
  {
    method: 'post',
    path: '/retrains/:id/approve',
    response: RetrainSchema,
    summary: "Start a retrain's canary",
    access: 'operator',
    tag: 'drift',
  },
];
