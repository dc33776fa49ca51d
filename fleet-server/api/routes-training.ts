/**
 * Training runs: start one for a task (operator; answered 202 at once, the run trains in a worker) and read
 * runs with their live progress (viewer).
 */
import { Hono } from 'hono';
import { TrainingRunListSchema, TrainingRunSchema, TrainRequestSchema } from '../../shared/api/pool.js';
import type { Env } from './auth.js';
import { requireRole } from './auth.js';
import type { ApiDeps } from './deps.js';
import { jsonBody } from './errors.js';
import type { RouteDoc } from './openapi.js';
import { taskName } from './routes-pool.js';

/** What these routes reach of the fleet. */
type Deps = Pick<ApiDeps, 'log' | 'tokens' | 'training'>;

export function trainingRoutes(deps: Deps): Hono<Env> {
  const app = new Hono<Env>();

  app.post('/tasks/:name/train', requireRole(deps.tokens, 'operator'), async (c) => {
    const body = await jsonBody(c, TrainRequestSchema);
    const run = await deps.training.start(taskName(c.req.param('name')), body, c.get('principal').name);
    deps.log.info({ run: run.id, task: run.task, snapshot: run.snapshot }, 'training run queued');
    return c.json(run, 202);
  });

  app.get('/training-runs', requireRole(deps.tokens, 'viewer'), async (c) => {
    const task = c.req.query('task');
    return c.json({ runs: await deps.training.list(task === undefined ? undefined : taskName(task)) });
  });

  app.get('/training-runs/:id', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json(await deps.training.get(c.req.param('id'))),
  );

  return app;
}

export const trainingRouteDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/tasks/:name/train',
    response: TrainingRunSchema,
    summary: "Train a task's model on a snapshot (queued; runs in a worker)",
    access: 'operator',
    tag: 'training',
    body: TrainRequestSchema,
    success: 202,
  },
  {
    method: 'get',
    path: '/training-runs',
    response: TrainingRunListSchema,
    summary: 'Training runs, newest first',
    access: 'viewer',
    tag: 'training',
  },
  {
    method: 'get',
    path: '/training-runs/:id',
    response: TrainingRunSchema,
    summary: 'One run with its live progress',
    access: 'viewer',
    tag: 'training',
  },
];
