/** Operator tokens, enrollment tokens, enrollment and device views. */
import { Hono } from 'hono';
import { z } from 'zod';
import { EnrollRequestSchema } from '../../shared/api/enroll.js';
import { ValidationError } from '../../shared/errors.js';
import { viewOf } from '../devices/registry.js';
import type { Env } from './auth.js';
import { requireRole } from './auth.js';
import type { ApiDeps } from './deps.js';
import { jsonBody } from './errors.js';
import type { RouteDoc } from './openapi.js';
import { modelName } from './routes-models.js';
import { ROLES } from './tokens.js';

/** What these routes reach of the fleet. */
type Deps = Pick<ApiDeps, 'devices' | 'keys' | 'log' | 'publicMqttUrl' | 'publicUrl' | 'tokens'>;

const TagsSchema = z.record(
  z.string().regex(/^[\w.-]{1,64}$/, 'tag keys: letters, digits, _ . -'),
  z.string().max(256),
);

const CreateTokenSchema = z.object({ role: z.enum(ROLES), name: z.string().max(128).optional() });
const CreateEnrollmentTokenSchema = z.object({
  tags: TagsSchema.default({}),
  profile: z.string().max(64).optional(),
  expiresInSeconds: z
    .number()
    .int()
    .min(1)
    .max(365 * 86_400)
    .default(86_400),
  name: z.string().max(128).optional(),
});

/** Server-side pagination of the device list (keyset: `after` is the last id of the previous page). */
const DevicePageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  after: z.string().min(1).max(64).optional(),
  q: z.string().min(1).max(128).optional(),
  tag: z.string().optional(),
  status: z.enum(['online', 'offline']).optional(),
  profile: z.string().min(1).max(64).optional(),
  /** `<name>` (any version) or `<name>@<version>`: devices whose last status lists it. */
  model: z.string().min(1).max(150).optional(),
});

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
    const body = await jsonBody(c, CreateTokenSchema);
    return c.json(await deps.tokens.create(body.role, body.name ?? `${body.role}-token`), 201);
  });

  app.post('/enrollment-tokens', requireRole(deps.tokens, 'operator'), async (c) => {
    const body = await jsonBody(c, CreateEnrollmentTokenSchema);
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
      return c.json({ devices: devices.map(viewOf) });
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
    return c.json({ devices: result.devices.map(viewOf), next: result.next });
  });

  app.get('/devices/:id', requireRole(deps.tokens, 'viewer'), async (c) => {
    return c.json(viewOf(await deps.devices.get(c.req.param('id'))));
  });

  return app;
}

export const deviceRouteDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/tokens',
    summary: 'Create an operator token',
    access: 'admin',
    tag: 'access',
    body: CreateTokenSchema,
    success: 201,
  },
  {
    method: 'post',
    path: '/enrollment-tokens',
    summary: 'Create an enrollment token for devices',
    access: 'operator',
    tag: 'devices',
    body: CreateEnrollmentTokenSchema,
    success: 201,
  },
  {
    method: 'post',
    path: '/enroll',
    summary: 'Enroll a device with an enrollment token',
    access: 'public',
    tag: 'devices',
    body: EnrollRequestSchema,
    success: 201,
  },
  {
    method: 'get',
    path: '/devices',
    summary:
      'List devices: filter by tag (repeatable k=v), status, search, profile, model (name or name@version); page with limit and after',
    access: 'viewer',
    tag: 'devices',
    query: DevicePageQuerySchema,
  },
  {
    method: 'get',
    path: '/devices/:id',
    summary: 'One device: status, models, telemetry',
    access: 'viewer',
    tag: 'devices',
  },
];
