/**
 * `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the HTTP API, built from the route list each routes
 * file declares beside its handlers. Request and response schemas are the wire contract's (shared/api/): the
 * very zod schemas the handlers validate with and the clients' types come from, converted by zod's own JSON
 * Schema output (draft 2020-12, as OpenAPI 3.1 uses). Every refusal answers with the error body. Nothing is
 * written by hand twice; a test checks that every route the server answers is in the document, and that it
 * validates.
 */
import { z } from 'zod';
import { ErrorBodySchema } from '../../shared/api/errors.js';
import type { Role } from './tokens.js';

export interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Hono path below /api/v1 (`/rollouts/:id`). */
  path: string;
  summary: string;
  /** Who may call it: an operator role at least, a device (its MQTT credentials), or anyone. */
  access: Role | 'device' | 'public';
  tag: string;
  /** The request body's schema (the one the handler validates with), and its media type. */
  body?: z.ZodType;
  bodyType?: 'application/json' | 'application/octet-stream' | 'text/csv' | 'multipart/form-data';
  /** Query parameters (an object schema; each key becomes a parameter). */
  query?: z.ZodObject;
  /** Status of a success (200 unless said). */
  success?: 200 | 201 | 202 | 206;
  /** The success body's schema (JSON), from shared/api; absent for bodies that are not JSON. */
  response?: z.ZodType;
  /** The media type of a success body that is not JSON (an artifact, an event stream). */
  responseType?: 'application/octet-stream' | 'text/event-stream';
}

/** A request schema as what a client may send (`io: 'input'`: defaults optional), a response as what it gets. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

export function openApiDocument(routes: readonly RouteDoc[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorSchema = jsonSchema(ErrorBodySchema, 'output');
  for (const r of routes) {
    const path = `/api/v1${r.path}`.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const pathParams = [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    const queryParams = r.query
      ? Object.entries(r.query.shape).map(([name, schema]) => ({
          name,
          in: 'query',
          required: !(schema as z.ZodType).safeParse(undefined).success,
          schema: jsonSchema(schema as z.ZodType),
        }))
      : [];
    const operation: Record<string, unknown> = {
      operationId: `${r.method}${r.path.replace(/[/:{}-](\w)?/g, (_, ch: string | undefined) => (ch ?? '').toUpperCase())}`,
      summary: r.summary,
      tags: [r.tag],
      'x-edgefleet-access': r.access,
      ...(r.access === 'public'
        ? { security: [] }
        : r.access === 'device'
          ? { security: [{ device: [] }] }
          : {}),
      parameters: [...pathParams, ...queryParams],
      responses: {
        [String(r.success ?? 200)]: {
          description: 'success',
          ...(r.response
            ? { content: { 'application/json': { schema: jsonSchema(r.response, 'output') } } }
            : r.responseType
              ? { content: { [r.responseType]: { schema: { type: 'string', format: 'binary' } } } }
              : {}),
        },
        '4XX': {
          description: 'the request was refused; the body says why',
          content: { 'application/json': { schema: errorSchema } },
        },
      },
    };
    if (r.body || r.bodyType) {
      const type = r.bodyType ?? 'application/json';
      operation.requestBody = {
        required: true,
        content: {
          [type]: { schema: r.body ? jsonSchema(r.body) : { type: 'string', format: 'binary' } },
        },
      };
    }
    paths[path] ??= {};
    paths[path]![r.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'edgefleet fleet server',
      version,
      description: 'Devices, data pool, training, registry, rollouts, drift and the audit trail.',
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: {
        operatorToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'an operator token (viewer, operator or admin)',
        },
        device: { type: 'http', scheme: 'basic', description: "a device's id and MQTT secret" },
      },
    },
    security: [{ operatorToken: [] }],
    paths,
  };
}
