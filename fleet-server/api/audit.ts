/**
 * The API's side of the audit trail: a middleware that appends every mutating call (POST, PUT, PATCH, DELETE)
 * once it has been answered — refused ones too, with their status — naming the operator token and role, the
 * method and path, and a sha256 of the request body; and the routes that read and verify the log.
 */
import { createHash } from 'node:crypto';
import { Hono, type MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { AuditListSchema, AuditQuerySchema, VerifyResultSchema } from '../../shared/api/audit.js';
import { EdgefleetError, ValidationError } from '../../shared/errors.js';
import type { AuditEntry, AuditLog } from '../audit/log.js';
import type { Env } from './auth.js';
import { requireRole } from './auth.js';
import type { Change } from './changes.js';
import type { ApiDeps } from './deps.js';
import { statusOf as errorStatus } from './errors.js';
import type { RouteDoc } from './openapi.js';

/** What these routes reach of the fleet. */
type Deps = Pick<ApiDeps, 'audit' | 'changes' | 'tokens'>;

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function auditMiddleware(audit: AuditLog): MiddlewareHandler<Env> {
  return async (c, next) => {
    if (!MUTATING.has(c.req.method)) return next();
    // A copy of the body for the digest: the handler reads the original.
    const body = c.req.raw.body ? Buffer.from(await c.req.raw.clone().arrayBuffer()) : null;
    let failed: unknown;
    try {
      await next();
    } catch (err) {
      failed = err;
    }
    const principal = c.get('principal');
    await audit.append({
      actor: principal?.name ?? 'unauthenticated',
      role: principal?.role ?? null,
      action: `${c.req.method} ${c.req.path}`,
      target: c.req.path.replace(/^\/api\/v1\//, ''),
      digest: body && body.length > 0 ? createHash('sha256').update(body).digest('hex') : null,
      status: failed ? statusOf(failed) : c.res.status,
    });
    if (failed) throw failed;
  };
}

/** Errors normally come back as responses (the app's error handler runs inside `next`); a stray one too. */
function statusOf(err: unknown): number {
  if (err instanceof EdgefleetError) return errorStatus(err);
  const status = (err as { status?: unknown }).status;
  return typeof status === 'number' ? status : 500;
}

export function auditRoutes(deps: Deps): Hono<Env> {
  const app = new Hono<Env>();
  app.get('/audit', requireRole(deps.tokens, 'operator'), async (c) => {
    const parsed = AuditQuerySchema.safeParse(c.req.query());
    if (!parsed.success)
      throw new ValidationError(`audit query: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`);
    const { actor, action, target, limit } = parsed.data;
    return c.json({
      entries: await deps.audit.list({
        limit,
        ...(actor ? { actor } : {}),
        ...(action ? { action } : {}),
        ...(target ? { target } : {}),
      }),
    });
  });
  app.get('/audit/verify', requireRole(deps.tokens, 'operator'), async (c) =>
    c.json(await deps.audit.verify()),
  );

  // Live updates for the console: every change the fleet records, as it is recorded (`change`), and every
  // rollout, training run or device whose state moved (`update`, coalesced; most leave no audit entry). The
  // console refetches what an event names instead of polling.
  app.get('/events', requireRole(deps.tokens, 'viewer'), (c) =>
    streamSSE(c, async (stream) => {
      const queue: ({ audit: AuditEntry } | { update: Change })[] = [];
      let wake: (() => void) | undefined;
      const unsubscribers = [
        deps.audit.subscribe((entry) => {
          queue.push({ audit: entry });
          wake?.();
        }),
        deps.changes.subscribe((change) => {
          queue.push({ update: change });
          wake?.();
        }),
      ];
      const unsubscribe = () => {
        for (const u of unsubscribers) u();
      };
      stream.onAbort(() => {
        unsubscribe();
        wake?.();
      });
      try {
        await stream.writeSSE({ event: 'ready', data: '{}' });
        while (!stream.aborted) {
          const next = queue.shift();
          if (!next) {
            // Wait for the next entry; a heartbeat every 15 s keeps proxies from closing a quiet stream.
            const woke = await Promise.race([
              new Promise<boolean>((r) => {
                wake = () => r(true);
              }),
              stream.sleep(15_000).then(() => false),
            ]);
            wake = undefined;
            if (!woke && !stream.aborted) await stream.writeSSE({ event: 'heartbeat', data: '{}' });
            continue;
          }
          if ('update' in next) {
            const { kind, id } = next.update;
            await stream.writeSSE({ event: 'update', data: JSON.stringify({ kind, id }) });
            continue;
          }
          const { seq, at, actor, action, target, status } = next.audit;
          await stream.writeSSE({
            event: 'change',
            id: String(seq),
            data: JSON.stringify({ seq, at, actor, action, target, status }),
          });
        }
      } finally {
        unsubscribe();
      }
    }),
  );
  return app;
}

export const auditRouteDocs: RouteDoc[] = [
  {
    method: 'get',
    path: '/audit',
    response: AuditListSchema,
    summary: 'Audit entries, newest first',
    access: 'operator',
    tag: 'audit',
    query: AuditQuerySchema,
  },
  {
    method: 'get',
    path: '/events',
    responseType: 'text/event-stream',
    summary:
      'Server-sent events: every recorded change as it is recorded (event `change`), and rollouts, training runs and devices whose state moved (event `update`: kind and id, at most one per thing per 250 ms)',
    access: 'viewer',
    tag: 'audit',
  },
  {
    method: 'get',
    path: '/audit/verify',
    response: VerifyResultSchema,
    summary: 'Walk the hash chain; name the first bad entry',
    access: 'operator',
    tag: 'audit',
  },
];
