/**
 * The HTTP API (`/api/v1/*`), built by a factory so tests drive it in-process with `app.request(...)`.
 * Handlers validate input once (zod), call the domain modules and throw on failure; `errorHandler` is the
 * only place that turns errors into responses. The console's page is not mounted here: the composition root
 * (main.ts) mounts it next to the API.
 */
import { Hono } from 'hono';
import { compress } from 'hono/compress';
import { type Health, HealthSchema } from '../../shared/api/console.js';
import { auditMiddleware, auditRouteDocs, auditRoutes } from './audit.js';
import type { Env } from './auth.js';
import type { ApiDeps } from './deps.js';
import { errorHandler } from './errors.js';
import { openApiDocument, type RouteDoc } from './openapi.js';
import { artifactRoutes } from './routes-artifacts.js';
import { consoleRouteDocs, consoleRoutes } from './routes-console.js';
import { deviceRouteDocs, deviceRoutes } from './routes-devices.js';
import { driftRouteDocs, driftRoutes } from './routes-drift.js';
import { modelRouteDocs, modelRoutes } from './routes-models.js';
import { poolRouteDocs, poolRoutes } from './routes-pool.js';
import { rolloutRouteDocs, rolloutRoutes } from './routes-rollouts.js';
import { trainingRouteDocs, trainingRoutes } from './routes-training.js';

export function createApi(deps: ApiDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.onError(errorHandler(deps.log));
  app.notFound((c) =>
    c.json({ error: { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` } }, 404),
  );

  // JSON answers gzip-compressed when the client accepts it (a page of 50 devices: 54 kB → a tenth on the wire).
  // Not the event stream (each event must leave at once) nor artifacts (byte ranges of already-dense files).
  const compressJson = compress({ encoding: 'gzip' });
  app.use('/api/v1/*', (c, next) =>
    c.req.path === '/api/v1/events' || c.req.path.startsWith('/api/v1/artifacts/')
      ? next()
      : compressJson(c, next),
  );
  app.use('/api/v1/*', auditMiddleware(deps.audit));
  // The broker URL is public knowledge (every enrolled device gets it); `edgefleet-agent doctor` checks it
  // is reachable from a device before that device enrolls.
  app.get('/api/v1/health', (c) =>
    c.json({ ok: true, version: deps.version, mqttUrl: deps.publicMqttUrl } satisfies Health),
  );
  // Built once, on first request: the routes do not change while the server runs.
  let document: Record<string, unknown> | undefined;
  app.get('/api/v1/openapi.json', (c) => {
    document ??= openApiDocument(API_ROUTE_DOCS, deps.version);
    return c.json(document);
  });
  app.route('/api/v1', deviceRoutes(deps));
  app.route('/api/v1', modelRoutes(deps));
  app.route('/api/v1', artifactRoutes(deps));
  app.route('/api/v1', rolloutRoutes(deps));
  app.route('/api/v1', poolRoutes(deps));
  app.route('/api/v1', trainingRoutes(deps));
  app.route('/api/v1', driftRoutes(deps));
  app.route('/api/v1', auditRoutes(deps));
  app.route('/api/v1', consoleRoutes(deps));
  return app;
}

/** Every route the API serves, described for the OpenAPI document (a test checks none is missing). */
export const API_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'get',
    path: '/health',
    summary: 'Liveness, version and the MQTT broker URL devices connect to',
    access: 'public',
    tag: 'meta',
    response: HealthSchema,
  },
  { method: 'get', path: '/openapi.json', summary: 'This document', access: 'public', tag: 'meta' },
  {
    method: 'get',
    path: '/artifacts/:sha256',
    summary: 'Download a model artifact (byte ranges supported)',
    access: 'device',
    responseType: 'application/octet-stream',
    tag: 'models',
  },
  ...deviceRouteDocs,
  ...modelRouteDocs,
  ...rolloutRouteDocs,
  ...poolRouteDocs,
  ...trainingRouteDocs,
  ...driftRouteDocs,
  ...auditRouteDocs,
  ...consoleRouteDocs,
];
