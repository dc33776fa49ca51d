/**
 * Rollouts: create (operator), read (viewer), and act on them — pause, resume, abort, rollback (operator),
 * promote past the remaining gates (admin). A rollout is created from a preset strategy with options, or from
 * a full custom spec. Status fields (summary, percent) are derived on read.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import {
  CreateRolloutRequestSchema,
  type Rollout,
  RolloutActionRequestSchema,
  RolloutListSchema,
  RolloutSchema,
  type RolloutSpec,
  RolloutSpecSchema,
} from '../../shared/api/rollouts.js';
import { ValidationError } from '../../shared/errors.js';
import { allowedActions } from '../rollouts/actions.js';
import { currentPercent, type RolloutRecord, summaryOf } from '../rollouts/record.js';
import { type PresetOptions, presetOptions, presetSpec } from '../rollouts/spec.js';
import type { Env } from './auth.js';
import { requireRole } from './auth.js';
import type { ApiDeps } from './deps.js';
import { jsonBody } from './errors.js';
import type { RouteDoc } from './openapi.js';

/** What these routes reach of the fleet. */
type Deps = Pick<ApiDeps, 'log' | 'models' | 'rollouts' | 'tokens'>;

function specOf(body: z.infer<typeof CreateRolloutRequestSchema>): RolloutSpec {
  if (body.strategy === 'custom') {
    if (body.spec === undefined)
      throw new ValidationError('strategy custom needs a spec', { code: 'invalid_spec' });
    const parsed = RolloutSpecSchema.safeParse({ strategy: 'custom', ...(body.spec as object) });
    if (!parsed.success)
      throw new ValidationError(`spec: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`, {
        code: 'invalid_spec',
      });
    return parsed.data;
  }
  if (body.spec !== undefined)
    throw new ValidationError('a spec is only taken with strategy custom', { code: 'invalid_spec' });
  const { model: _model, targets: _targets, strategy, spec: _spec, ...options } = body;
  let preset: PresetOptions;
  try {
    preset = presetOptions(options);
  } catch (err) {
    throw new ValidationError((err as Error).message, { code: 'invalid_gate' });
  }
  try {
    return presetSpec(strategy, preset);
  } catch (err) {
    if (err instanceof z.ZodError)
      throw new ValidationError(`spec: ${z.prettifyError(err).replaceAll('\n', '; ')}`, {
        code: 'invalid_spec',
      });
    throw err;
  }
}

/**
 * A stored rollout as the wire shows it: the fields the contract declares (each picked, so a field added to
 * the record reaches clients only once shared/api declares it) and what is derived on read.
 */
export function toRollout(rollout: RolloutRecord): Rollout {
  const { status } = rollout;
  return {
    id: rollout.id,
    model: rollout.model,
    targets: rollout.targets,
    spec: rollout.spec,
    createdAt: rollout.createdAt,
    createdBy: rollout.createdBy,
    status: {
      phase: status.phase,
      step: status.step,
      stepStartedAt: status.stepStartedAt,
      pause: status.pause,
      analysis: status.analysis,
      abort: status.abort,
      ...(status.measured ? { measured: status.measured } : {}),
      events: status.events,
      updatedAt: status.updatedAt,
    },
    devices: rollout.devices.map((d) => ({
      deviceId: d.deviceId,
      rank: d.rank,
      state: d.state,
      commandId: d.commandId,
      mode: d.mode,
      shadowPercent: d.shadowPercent,
      activateId: d.activateId,
      rollbackId: d.rollbackId,
      reason: d.reason,
      executionProvider: d.executionProvider,
      ...(d.variant !== undefined ? { variant: d.variant } : {}),
      sentAt: d.sentAt,
      ...(d.issuedAt !== undefined ? { issuedAt: d.issuedAt } : {}),
      updatedAt: d.updatedAt,
    })),
    phase: status.phase,
    percent: currentPercent(rollout),
    summary: summaryOf(rollout),
    /** Every operator action with whether this phase allows it, and why not: what clients render. */
    actions: allowedActions(status.phase),
  };
}

export function rolloutRoutes(deps: Deps): Hono<Env> {
  const app = new Hono<Env>();

  app.post('/rollouts', requireRole(deps.tokens, 'operator'), async (c) => {
    const body = await jsonBody(c, CreateRolloutRequestSchema);
    const spec = specOf(body);
    const { name, version } = body.model;
    const resolved =
      typeof version === 'number' ? version : (await deps.models.resolve(name, version)).version;
    const rollout = await deps.rollouts.create({
      model: { name, version: resolved },
      targets: body.targets,
      spec,
      actor: c.get('principal').name,
    });
    deps.log.info(
      {
        rolloutId: rollout.id,
        model: rollout.model,
        strategy: spec.strategy,
        devices: rollout.devices.length,
      },
      'rollout created',
    );
    return c.json(toRollout(rollout), 201);
  });

  app.get('/rollouts', requireRole(deps.tokens, 'viewer'), async (c) => {
    return c.json({ rollouts: (await deps.rollouts.list()).map(toRollout) });
  });

  app.get('/rollouts/:id', requireRole(deps.tokens, 'viewer'), async (c) => {
    return c.json(toRollout(await deps.rollouts.get(c.req.param('id'))));
  });

  for (const action of ['pause', 'resume', 'abort', 'rollback'] as const) {
    app.post(`/rollouts/:id/${action}`, requireRole(deps.tokens, 'operator'), async (c) => {
      const { reason } = await jsonBody(c, RolloutActionRequestSchema);
      const principal = c.get('principal').name;
      const act = action === 'resume' ? { type: action } : { type: action, reason };
      const rollout = await deps.rollouts.act(c.req.param('id'), act, principal);
      deps.log.info({ rolloutId: rollout.id, action, by: principal, reason }, 'rollout action');
      return c.json(toRollout(rollout));
    });
  }

  // Promote skips the remaining steps and their gates: an override, so admins only.
  app.post('/rollouts/:id/promote', requireRole(deps.tokens, 'admin'), async (c) => {
    await jsonBody(c, RolloutActionRequestSchema);
    const principal = c.get('principal').name;
    const rollout = await deps.rollouts.act(c.req.param('id'), { type: 'promote' }, principal);
    deps.log.info({ rolloutId: rollout.id, action: 'promote', by: principal }, 'rollout action');
    return c.json(toRollout(rollout));
  });

  return app;
}

export const rolloutRouteDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/rollouts',
    response: RolloutSchema,
    summary: 'Create a rollout (preset strategy or custom spec)',
    access: 'operator',
    tag: 'rollouts',
    body: CreateRolloutRequestSchema,
    success: 201,
  },
  {
    method: 'get',
    path: '/rollouts',
    response: RolloutListSchema,
    summary: 'Rollouts, newest first',
    access: 'viewer',
    tag: 'rollouts',
  },
  {
    method: 'get',
    path: '/rollouts/:id',
    response: RolloutSchema,
    summary: 'One rollout: steps, gates, devices',
    access: 'viewer',
    tag: 'rollouts',
  },
  ...(['pause', 'resume', 'abort', 'rollback'] as const).map(
    (action): RouteDoc => ({
      method: 'post',
      path: `/rollouts/:id/${action}`,
      response: RolloutSchema,
      summary: `${action[0]!.toUpperCase()}${action.slice(1)} a rollout`,
      access: 'operator',
      tag: 'rollouts',
      body: RolloutActionRequestSchema,
    }),
  ),
  {
    method: 'post',
    path: '/rollouts/:id/promote',
    response: RolloutSchema,
    summary: 'Skip the remaining steps and gates',
    access: 'admin',
    tag: 'rollouts',
    body: RolloutActionRequestSchema,
  },
];
