/**
 * `GET /api/v1/openapi.json` against a real fleet server: served without a token, valid OpenAPI 3.1 (checked
 * by an independent validator), and every route the server answers — read from the router itself — is in
 * it with its method. Request bodies come from the zod schemas the handlers validate with: the document's
 * schema for rollout creation refuses what the API refuses. Responses come from shared/api's schemas too.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';

describe('OpenAPI document', () => {
  let env: TestFleet;
  let doc: any;

  beforeAll(async () => {
    env = await startTestFleet();
    const res = await fetch(`${env.fleet.httpUrl}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    doc = await res.json();
  });
  afterAll(async () => env?.close());

  it('validates as OpenAPI 3.1', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('has every route the server answers, with its method', () => {
    const served = new Set<string>();
    for (const route of env.fleet.api.routes) {
      if (route.method === 'ALL' || !route.path.startsWith('/api/v1/')) continue;
      served.add(`${route.method.toLowerCase()} ${route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
    }
    const documented = new Set<string>();
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(operations)) documented.add(`${method} ${path}`);
    }
    expect(served.size).toBeGreaterThan(40);
    expect([...served].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !served.has(r))).toEqual([]);
  });

  it("describes request bodies from the handlers' own schemas", () => {
    const create = doc.paths['/api/v1/rollouts'].post;
    const schema = create.requestBody.content['application/json'].schema;
    expect(schema.properties.strategy.enum).toEqual(['all-at-once', 'canary', 'blue-green', 'custom']);
    expect(schema.additionalProperties).toBe(false); // the handler refuses unknown fields too
    expect(create['x-edgefleet-access']).toBe('operator');
    expect(doc.paths['/api/v1/enroll'].post.security).toEqual([]);
    const policy =
      doc.paths['/api/v1/tasks/{name}/retrain-policy'].put.requestBody.content['application/json'].schema;
    expect(policy.properties.mode.enum).toEqual(['auto', 'approve']);
  });

  it('describes every JSON answer with its shared/api schema, and every refusal with the error body', () => {
    const rollout = doc.paths['/api/v1/rollouts/{id}'].get.responses;
    const body = rollout['200'].content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['id', 'spec', 'status', 'devices', 'actions']));
    expect(body.properties.phase.enum).toContain('rolled_back');
    expect(doc.paths['/api/v1/rollouts'].post.responses['201'].content['application/json']).toBeDefined();
    const undescribed: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(operations)) {
        const error = op.responses['4XX'].content['application/json'].schema;
        expect(error.properties.error.required).toEqual(['code', 'message']);
        const success = Object.entries(op.responses).find(([status]) => status.startsWith('2'))![1] as any;
        // The document itself is the one JSON answer described only by this very standard.
        if (!success.content && path !== '/api/v1/openapi.json') undescribed.push(`${method} ${path}`);
      }
    }
    expect(undescribed).toEqual([]);
  });

  it('documents the devices page query the route enforces', async () => {
    const list = doc.paths['/api/v1/devices'].get.parameters.map((p: any) => p.name);
    expect(list).toEqual(expect.arrayContaining(['limit', 'after', 'q', 'tag', 'status']));
    expect(await env.api.request('GET', '/api/v1/devices?limit=5')).toEqual({ devices: [], next: null });
    await expect(env.api.request('GET', '/api/v1/devices?limit=0')).rejects.toMatchObject({ status: 400 });
  });
});
