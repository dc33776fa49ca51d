/**
 * Artifact downloads with HTTP Range (devices resume interrupted downloads). Readable by operators (bearer,
 * viewer and up) and by enrolled devices (HTTP Basic with their MQTT credentials). Content-addressed, so
 * the ETag is the sha256.
 */
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { AuthenticationError, NotFoundError, ValidationError } from '../../shared/errors.js';
import type { Env } from './auth.js';
import { bearerPrincipal } from './auth.js';
import type { ApiDeps } from './deps.js';

/** What these routes reach of the fleet. */
type Deps = Pick<ApiDeps, 'artifacts' | 'devices' | 'tokens'>;

export type ByteRange = { start: number; end: number } | 'unsatisfiable' | null;

/** Parse a single-range `Range` header against a resource of `size` bytes (null: no usable range → 200). */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

export function artifactRoutes(deps: Deps): Hono<Env> {
  const app = new Hono<Env>();

  app.get('/artifacts/:sha256', async (c) => {
    const header = c.req.header('authorization');
    if (!(await authorized(deps, header))) {
      throw new AuthenticationError('artifact downloads need an operator token or device credentials');
    }
    const sha256 = c.req.param('sha256');
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new ValidationError(`'${sha256}' is not a sha256 digest`);
    const info = await deps.artifacts.stat(sha256);
    if (!info) throw new NotFoundError('artifact', sha256);

    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      etag: `"${sha256}"`,
    };
    const range = parseRange(c.req.header('range'), info.size);
    if (range === 'unsatisfiable') {
      return c.body(null, 416, { ...headers, 'content-range': `bytes */${info.size}` });
    }
    const { start, end } = range ?? { start: 0, end: info.size - 1 };
    const stream = Readable.toWeb(deps.artifacts.read(sha256, start, end)) as ReadableStream;
    headers['content-length'] = String(end - start + 1);
    if (range) headers['content-range'] = `bytes ${start}-${end}/${info.size}`;
    return c.body(stream, range ? 206 : 200, headers);
  });

  return app;
}

async function authorized(deps: Deps, header: string | undefined): Promise<boolean> {
  if (!header) return false;
  if (/^Bearer /i.test(header)) return (await bearerPrincipal(deps.tokens, header)) !== undefined;
  const basic = /^Basic\s+(\S+)$/i.exec(header);
  if (!basic) return false;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return false;
  return deps.devices.verifyDevice(decoded.slice(0, colon), decoded.slice(colon + 1));
}
