/** JSON answers are gzip-compressed for clients that accept it; the event stream and artifacts never are. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { mlp } from '../../support/models.js';

describe('API compression', () => {
  let env: TestFleet;
  beforeAll(async () => {
    env = await startTestFleet();
  });
  afterAll(async () => {
    await env?.close();
  });

  const get = (path: string, encoding: string) =>
    fetch(`${env.fleet.httpUrl}${path}`, {
      headers: { authorization: `Bearer ${env.api.token}`, 'accept-encoding': encoding },
    });

  it('compresses a large JSON answer when asked, and the body is the same document', async () => {
    const plain = await get('/api/v1/openapi.json', 'identity');
    const zipped = await get('/api/v1/openapi.json', 'gzip');
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(zipped.headers.get('content-encoding')).toBe('gzip');
    expect(await zipped.json()).toEqual(await plain.json());
  });

  it('leaves the event stream and artifacts alone', async () => {
    const controller = new AbortController();
    const events = await fetch(`${env.fleet.httpUrl}/api/v1/events`, {
      headers: { authorization: `Bearer ${env.api.token}`, 'accept-encoding': 'gzip' },
      signal: controller.signal,
    });
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    expect(events.headers.get('content-encoding')).toBeNull();
    const first = await events.body!.getReader().read();
    expect(new TextDecoder().decode(first.value)).toContain('event: ready');
    controller.abort();

    const pushed = await env.api.pushModel('clf', mlp(1));
    const artifact = await get(`/api/v1/artifacts/${pushed.artifact.sha256}`, 'gzip');
    expect(artifact.headers.get('content-encoding')).toBeNull();
  });
});
