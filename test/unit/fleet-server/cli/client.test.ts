import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient, ApiError, UnreachableError } from '../../../../fleet-server/cli/client.js';
import { type FakeApi, only, startFakeApi } from './harness.js';

let api: FakeApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

function clientFor(url: string, token: string | null = 'tok-1'): ApiClient {
  return new ApiClient({
    baseUrl: url,
    token: token ?? undefined,
    fetch: (input, init) => fetch(input, init),
  });
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the request to fail');
}

describe('ApiClient', () => {
  it('sends the bearer token and JSON bodies, and returns the parsed response', async () => {
    api = await startFakeApi({
      'POST /api/v1/tokens': { status: 201, json: { id: 'a', token: 't', role: 'viewer', name: 'ci' } },
    });
    const created = await clientFor(api.url).createToken({ role: 'viewer', name: 'ci' });
    expect(created).toEqual({ id: 'a', token: 't', role: 'viewer', name: 'ci' });
    const req = only(api);
    expect(req.headers['authorization']).toBe('Bearer tok-1');
    expect(req.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req.body.toString())).toEqual({ role: 'viewer', name: 'ci' });
  });

  it('sends no Authorization header without a token', async () => {
    api = await startFakeApi({ 'GET /api/v1/health': { json: { ok: true, version: '0.1.0' } } });
    await clientFor(api.url, null).health();
    expect(only(api).headers['authorization']).toBeUndefined();
  });

  it('encodes device filters as repeated tag= parameters and ids as one path segment', async () => {
    api = await startFakeApi({
      'GET /api/v1/devices': { json: { devices: [] } },
      'GET /api/v1/devices/a%2Fb': { json: { id: 'a/b' } },
    });
    const client = clientFor(api.url);
    await client.listDevices({ tags: { site: 'x y', line: '2' }, status: 'online' });
    expect(api.requests[0]!.query.getAll('tag')).toEqual(['site=x y', 'line=2']);
    expect(api.requests[0]!.query.get('status')).toBe('online');
    await client.getDevice('a/b');
    expect(api.requests[1]!.path).toBe('/api/v1/devices/a%2Fb');
  });

  it('turns an error body into an ApiError naming code, message and status', async () => {
    api = await startFakeApi({
      'GET /api/v1/devices/dev-x': {
        status: 404,
        json: { error: { code: 'not_found', message: "device 'dev-x' not found" } },
      },
    });
    const err = await rejectionOf(clientFor(api.url).getDevice('dev-x'));
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 404, code: 'not_found', detail: "device 'dev-x' not found" });
    expect(err.message).toBe("device 'dev-x' not found (not_found, HTTP 404)");
  });

  it('reports a non-JSON error body with its status and a snippet of the body', async () => {
    api = await startFakeApi({
      'GET /api/v1/models': {
        status: 502,
        text: '<html>\n<b>Bad gateway</b>\n</html>',
        contentType: 'text/html',
      },
    });
    const err = await rejectionOf(clientFor(api.url).listModels());
    expect(err).toMatchObject({ status: 502, code: 'http_502' });
    expect(err.message).toContain('GET /api/v1/models failed: <html> <b>Bad gateway</b> </html>');
  });

  it('rejects a successful response that is not JSON', async () => {
    api = await startFakeApi({ 'GET /api/v1/models': { status: 200, text: 'hello' } });
    const err = await rejectionOf(clientFor(api.url).listModels());
    expect(err).toMatchObject({ code: 'invalid_response' });
    expect(err.message).toContain('not JSON: hello');
  });

  it('says which URL it could not reach, and why', async () => {
    // A port that was just free: listen, note it, close.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const url = `http://127.0.0.1:${port}`;
    const err = await rejectionOf(clientFor(url).listDevices());
    expect(err).toBeInstanceOf(UnreachableError);
    expect(err.message).toBe(
      `cannot reach the fleet server at ${url}: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });

  it('pushes raw ONNX as application/octet-stream with expiresInDays in the query', async () => {
    api = await startFakeApi({
      'POST /api/v1/models/demo/versions': { status: 201, json: { name: 'demo' } },
    });
    const bytes = Uint8Array.from([8, 1, 0, 255, 13, 10]);
    await clientFor(api.url).pushModel('demo', bytes, { expiresInDays: 30 });
    const req = only(api);
    expect(req.headers['content-type']).toBe('application/octet-stream');
    expect([...req.body]).toEqual([...bytes]);
    expect(req.query.get('expiresInDays')).toBe('30');
  });

  it('pushes multipart/form-data with the model file and the sampleInput text when given a sample', async () => {
    api = await startFakeApi({
      'POST /api/v1/models/demo/versions': { status: 201, json: { name: 'demo' } },
    });
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) % 256);
    const sample = '{"inputs":[{"name":"input","shape":[1,4]}]}';
    await clientFor(api.url).pushModel('demo', bytes, { sampleInput: sample, fileName: 'm.onnx' });
    const req = only(api);
    expect(req.query.has('expiresInDays')).toBe(false);
    const contentType = String(req.headers['content-type']);
    expect(contentType).toMatch(/^multipart\/form-data; boundary=/);
    const form = await new Request('http://x/', {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: req.body,
    }).formData();
    const model = form.get('model') as File;
    expect(model.name).toBe('m.onnx');
    expect([...new Uint8Array(await model.arrayBuffer())]).toEqual([...bytes]);
    expect(form.get('sampleInput')).toBe(sample);
  });
});
