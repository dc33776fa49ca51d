/**
 * The data pool over HTTP: tasks, file imports (CSV or JSONL body), stats with refusal counts, snapshots.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import {
  ImportQuerySchema,
  ImportResultSchema,
  RejectionsSchema,
  SnapshotListSchema,
  SnapshotSchema,
  TaskListSchema,
  TaskWithStatsSchema,
} from '../../shared/api/pool.js';
import { TooLargeError, ValidationError } from '../../shared/errors.js';
import { TaskNameSchema, TaskSchema } from '../../shared/pool.js';
import { parseImport } from '../pool/import.js';
import type { Env } from './auth.js';
import { requireRole } from './auth.js';
import type { ApiDeps } from './deps.js';
import { jsonBody } from './errors.js';
import type { RouteDoc } from './openapi.js';

/** What these routes reach of the fleet. */
type Deps = Pick<ApiDeps, 'log' | 'pool' | 'snapshots' | 'tokens'>;

const MAX_IMPORT_BYTES = 256 * 1024 * 1024;

/** A task name from a URL, or a 400 naming what is wrong with it. */
export function taskName(raw: string): string {
  const parsed = TaskNameSchema.safeParse(raw);
  if (!parsed.success)
    throw new ValidationError(`invalid task name '${raw}': ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

export function poolRoutes(deps: Deps): Hono<Env> {
  const app = new Hono<Env>();
  const { pool, snapshots } = deps;

  app.post('/tasks', requireRole(deps.tokens, 'operator'), async (c) => {
    const body = await jsonBody(c, z.record(z.string(), z.unknown()));
    return c.json(await pool.createTask({ ...body, createdAt: new Date().toISOString() }), 201);
  });

  app.get('/tasks', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json({ tasks: await pool.listTasks() }),
  );

  app.get('/tasks/:name', requireRole(deps.tokens, 'viewer'), async (c) => {
    const task = await pool.getTask(taskName(c.req.param('name')));
    return c.json({ ...task, stats: await pool.stats(task) });
  });

  app.post(
    '/tasks/:name/import',
    requireRole(deps.tokens, 'operator'),
    bodyLimit({
      maxSize: MAX_IMPORT_BYTES,
      onError: () => {
        throw new TooLargeError(`import bodies are limited to ${MAX_IMPORT_BYTES} bytes`);
      },
    }),
    async (c) => {
      const name = taskName(c.req.param('name'));
      const query = ImportQuerySchema.safeParse(c.req.query());
      if (!query.success) throw new ValidationError(z.prettifyError(query.error).replaceAll('\n', '; '));
      const existing = await pool.findTask(name);
      const parsed = parseImport(await c.req.text(), existing, {
        format: query.data.format,
        label: query.data.label,
        kind: query.data.kind,
        model: query.data.model,
        sourceName: query.data.source,
        now: new Date(),
      });
      const created = !existing;
      const task =
        existing ??
        (await pool.createTask({ ...parsed.derivedTask, name, model: parsed.derivedTask.model || name }));
      const result = await pool.ingest(task, parsed.source, parsed.samples);
      deps.log.info(
        { task: name, created, accepted: result.accepted, rejected: result.rejected },
        'data imported',
      );
      return c.json({ task, created, ...result }, 201);
    },
  );

  app.post('/tasks/:name/snapshots', requireRole(deps.tokens, 'operator'), async (c) => {
    const task = await pool.getTask(taskName(c.req.param('name')));
    return c.json(await snapshots.create(task, c.get('principal').name, new Date()), 201);
  });

  app.get('/tasks/:name/snapshots', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json({ snapshots: await snapshots.list(taskName(c.req.param('name'))) }),
  );

  app.get('/pool/rejections', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json({ rejections: await pool.rejections() }),
  );

  app.get('/snapshots/:id', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json(await snapshots.get(c.req.param('id'))),
  );

  return app;
}

export const poolRouteDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/tasks',
    response: TaskSchema,
    summary: 'Create a task (features, label, model)',
    access: 'operator',
    tag: 'data',
    body: TaskSchema,
    success: 201,
  },
  {
    method: 'get',
    path: '/tasks',
    response: TaskListSchema,
    summary: 'Tasks',
    access: 'viewer',
    tag: 'data',
  },
  {
    method: 'get',
    path: '/tasks/:name',
    response: TaskWithStatsSchema,
    summary: 'One task with its pool statistics',
    access: 'viewer',
    tag: 'data',
  },
  {
    method: 'post',
    path: '/tasks/:name/import',
    response: ImportResultSchema,
    summary: 'Import CSV or JSONL samples (creates the task from the file when new)',
    access: 'operator',
    tag: 'data',
    bodyType: 'text/csv',
    query: ImportQuerySchema,
    success: 201,
  },
  {
    method: 'post',
    path: '/tasks/:name/snapshots',
    response: SnapshotSchema,
    summary: "Freeze the task's samples as a content-hashed snapshot",
    access: 'operator',
    tag: 'data',
    success: 201,
  },
  {
    method: 'get',
    path: '/tasks/:name/snapshots',
    response: SnapshotListSchema,
    summary: "The task's snapshots",
    access: 'viewer',
    tag: 'data',
  },
  {
    method: 'get',
    path: '/pool/rejections',
    response: RejectionsSchema,
    summary: 'Refused samples by task, source and reason',
    access: 'viewer',
    tag: 'data',
  },
  {
    method: 'get',
    path: '/snapshots/:id',
    response: SnapshotSchema,
    summary: 'One snapshot',
    access: 'viewer',
    tag: 'data',
  },
];
