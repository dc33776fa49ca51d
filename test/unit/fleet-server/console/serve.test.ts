/** The console's page and assets: bundled in memory, content-hashed names, precompressed, locked-down headers. */
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { consolePage } from '../../../../fleet-server/console/serve.js';

describe('console page', () => {
  const app = consolePage();

  it('serves the page, which names its hashed script and stylesheet', async () => {
    const res = await app.request('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).toMatch(/<script type="module" src="\/console\/app-[A-Z0-9]+\.js"><\/script>/);
    expect(html).toMatch(/<link rel="stylesheet" href="\/console\/app-[A-Z0-9]+\.css">/);
    // Nothing from outside: every URL the page names is the fleet's own.
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('serves each asset compressed as the browser accepts, immutable, and the same bytes whichever way', async () => {
    const html = await (await app.request('/')).text();
    const script = /src="([^"]+)"/.exec(html)![1]!;
    const plain = await app.request(script);
    const raw = Buffer.from(await plain.arrayBuffer());
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(plain.headers.get('cache-control')).toContain('immutable');
    expect(raw.includes('edgefleet.token')).toBe(true);

    const br = await app.request(script, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(br.headers.get('content-encoding')).toBe('br');
    const brBytes = Buffer.from(await br.arrayBuffer());
    expect(Number(br.headers.get('content-length'))).toBe(brBytes.length);
    expect(brBytes.length).toBeLessThan(raw.length / 2);
    expect(brotliDecompressSync(brBytes).equals(raw)).toBe(true);

    const gz = await app.request(script, { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(gunzipSync(Buffer.from(await gz.arrayBuffer())).equals(raw)).toBe(true);
  });

  it('answers an unknown asset with a JSON 404', async () => {
    const res = await app.request('/console/app-NOPE.js');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { code: 'not_found', message: "no console asset 'app-NOPE.js'" },
    });
  });
});
