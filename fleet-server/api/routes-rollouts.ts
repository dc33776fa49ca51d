/** Rollouts: create (operator) and read (viewer). Status fields (phase, summary) are derived on read. */
import { Hono } from 'hono';
import { z } from 'zod';
import { ModelNameSchema } from '../../shared/manifest.js';
import { ALIASES } from '../registry/models.js';
import { phaseOf, type RolloutRecord, summaryOf } from '../rollouts/state.js';
import type { ApiDeps, Env } from './app.js';
import { requireRole } from './app.js';
import { jsonBody } from './errors.js';

const CreateRolloutSchema = z.object({
  /** A version number, or an alias resolved when the rollout is created (the rollout records the number). */
  model: z.object({
    name: ModelNameSchema,
    version: z.union([z.number().int().positive(), z.enum(ALIASES)]),
  }),
  targets: z
    .object({
      devices: z.array(z.string().min(1).max(64)).max(100_000).optional(),
      tags: z.record(z.string(), z.string()).optional(),
    })
    .refine((t) => (t.devices?.length ?? 0) > 0 || Object.keys(t.tags ?? {}).length > 0, {
      message: 'targets need device ids or tags',
    }),
  strategy: z.literal('all-at-once').default('all-at-once'),
});

export function rolloutView(rollout: RolloutRecord) {
  return { ...rollout, phase: phaseOf(rollout), summary: summaryOf(rollout) };
}

export function rolloutRoutes(deps: ApiDeps): Hono<Env> {
  const app = new Hono<Env>();

  app.post('/rollouts', requireRole(deps.tokens, 'operator'), async (c) => {
    const body = await jsonBody(c, CreateRolloutSchema);
    const { name, version } = body.model;
    const resolved =
      typeof version === 'number' ? version : (await deps.models.resolve(name, version)).version;
    const rollout = await deps.rollouts.create({
      ...body,
      model: { name, version: resolved },
      actor: c.get('principal').name,
    });
    deps.log.info(
      { rolloutId: rollout.id, model: rollout.model, devices: rollout.devices.length },
      'rollout created',
    );
    return c.json(rolloutView(rollout), 201);
  });

  app.get('/rollouts', requireRole(deps.tokens, 'viewer'), async (c) => {
    return c.json({ rollouts: (await deps.rollouts.list()).map(rolloutView) });
  });

  app.get('/rollouts/:id', requireRole(deps.tokens, 'viewer'), async (c) => {
    return c.json(rolloutView(await deps.rollouts.get(c.req.param('id'))));
  });

  return app;
}
