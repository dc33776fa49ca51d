/** Operator tokens, enrollment tokens, enrollment and device views. */
import { Hono } from 'hono';
import { z } from 'zod';
import {
  CreateEnrollmentTokenRequestSchema,
  CreateTokenRequestSchema,
  type Device,
  DeviceListSchema,
  DevicePageQuerySchema,
  DeviceSchema,
  EnrollmentTokenSchema,
  OperatorTokenSchema,
} from '../../shared/api/devices.js';
import { EnrollRequestSchema, EnrollResponseSchema } from '../../shared/api/enroll.js';
import { ValidationError } from '../../shared/errors.js';
import { type DeviceRecord, viewOf } from '../devices/registry.js';
import type { Env } from './auth.js';
import { requireRole } from './auth.js';
import type { ApiDeps } from './deps.js';
import { jsonBody } from './errors.js';
import type { RouteDoc } from './openapi.js';
import { modelName } from './routes-models.js';

/** What these routes reach of the fleet. */
type Deps = Pick<ApiDeps, 'devices' | 'keys' | 'log' | 'publicMqttUrl' | 'publicUrl' | 'tokens'>;

/** `?model=clf` or `?model=clf@3` → the device filter's model, or a 400 naming what is wrong. */
function parseModelFilter(raw: string): { name: string; version?: number } {
  const at = raw.lastIndexOf('@');
  if (at < 0) return { name: modelName(raw) };
  const version = raw.slice(at + 1);
  if (!/^[1-9][0-9]{0,8}$/.test(version))
    throw new ValidationError(
      `model filter '${raw}' must be <name> or <name>@<version> with a positive integer version`,
    );
  return { name: modelName(raw.slice(0, at)), version: Number(version) };
}

/** A device as the wire shows it: the registry's view (no secret; `status` instead of the online flag). */
export function toDevice(record: DeviceRecord): Device {
  return viewOf(record);
}

/** `?tag=k=v` (repeatable) → { k: v }. */
export function parseTagQuery(values: string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new ValidationError(`tag filter '${value}' must look like key=value`);
    tags[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return tags;
}

export function deviceRoutes(deps: Deps): Hono<Env> {
  const app = new Hono<Env>();

  app.post('/tokens', requireRole(deps.tokens, 'admin'), async (c) => {
    const body = await jsonBody(c, CreateTokenRequestSchema);
    return c.json(await deps.tokens.create(body.role, body.name ?? `${body.role}-token`), 201);
  });

  app.post('/enrollment-tokens', requireRole(deps.tokens, 'operator'), async (c) => {
    const body = await jsonBody(c, CreateEnrollmentTokenRequestSchema);
    return c.json(await deps.devices.createEnrollmentToken(body), 201);
  });

  app.post('/enroll', async (c) => {
    const body = await jsonBody(c, EnrollRequestSchema);
    const response = await deps.devices.enroll(body, {
      trustedKeys: deps.keys.trusted,
      serverUrl: deps.publicUrl,
      mqttUrl: deps.publicMqttUrl,
    });
    deps.log.info({ deviceId: response.deviceId, profile: response.profile.id }, 'device enrolled');
    return c.json(response, 201);
  });

  app.get('/devices', requireRole(deps.tokens, 'viewer'), async (c) => {
    const status = c.req.query('status');
    if (status !== undefined && status !== 'online' && status !== 'offline') {
      throw new ValidationError(`status filter must be online or offline, got '${status}'`);
    }
    const tags = parseTagQuery(c.req.queries('tag') ?? []);
    const page = DevicePageQuerySchema.safeParse({
      limit: c.req.query('limit'),
      after: c.req.query('after'),
      q: c.req.query('q'),
      profile: c.req.query('profile'),
      model: c.req.query('model'),
    });
    if (!page.success)
      throw new ValidationError(`devices query: ${z.prettifyError(page.error).replaceAll('\n', '; ')}`);
    const { profile } = page.data;
    const model = page.data.model === undefined ? undefined : parseModelFilter(page.data.model);
    if (page.data.limit === undefined && page.data.after === undefined && page.data.q === undefined) {
      const devices = await deps.devices.list({ tags, status, profile, model });
      return c.json({ devices: devices.map(toDevice) });
    }
    const result = await deps.devices.page({
      limit: page.data.limit ?? 100,
      after: page.data.after,
      tags,
      status,
      search: page.data.q,
      profile,
      model,
    });
    return c.json({ devices: result.devices.map(toDevice), next: result.next });
  });

  app.get('/devices/:id', requireRole(deps.tokens, 'viewer'), async (c) => {
    return c.json(toDevice(await deps.devices.get(c.req.param('id'))));
  });

  return app;
}

export const deviceRouteDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/tokens',
    response: OperatorTokenSchema,
    summary: 'Create an operator token',
    access: 'admin',
    tag: 'access',
    body: CreateTokenRequestSchema,
    success: 201,
  },
  {
    method: 'post',
    path: '/enrollment-tokens',
    response: EnrollmentTokenSchema,
    summary: 'Create an enrollment token for devices',
    access: 'operator',
    tag: 'devices',
    body: CreateEnrollmentTokenRequestSchema,
    success: 201,
  },
  {
    method: 'post',
    path: '/enroll',
    response: EnrollResponseSchema,
    summary: 'Enroll a device with an enrollment token',
    access: 'public',
    tag: 'devices',
    body: EnrollRequestSchema,
    success: 201,
  },
  {
    method: 'get',
    path: '/devices',
    response: DeviceListSchema,
    summary:
      'List devices: filter by tag (repeatable k=v), status, search, profile, model (name or name@version); page with limit and after',
    access: 'viewer',
    tag: 'devices',
    query: DevicePageQuerySchema,
  },
  {
    method: 'get',
    path: '/devices/:id',
    response: DeviceSchema,
    summary: 'One device: status, models, telemetry',
    access: 'viewer',
    tag: 'devices',
  },
];
