/**
 * Model versions: push (raw ONNX body, or multipart with a sample input) and read. The body is size-capped
 * while it streams in, before anything is parsed.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { TooLargeError, ValidationError } from '../../shared/errors.js';
import { ModelNameSchema } from '../../shared/manifest.js';
import { type SampleInput, SampleInputSchema } from '../registry/inspect.js';
import { lineageOf } from '../registry/lineage.js';
import { parseAlias } from '../registry/models.js';
import type { ApiDeps, Env } from './app.js';
import { requireRole } from './app.js';
import { jsonBody } from './errors.js';
import type { RouteDoc } from './openapi.js';

/** A model name from a path, or a 400 naming what is wrong with it (shared by every route that takes one). */
export function modelName(raw: string): string {
  const parsed = ModelNameSchema.safeParse(raw);
  if (!parsed.success)
    throw new ValidationError(`invalid model name '${raw}': ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

function versionNumber(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new ValidationError(`model version must be a positive integer, got '${raw}'`);
  return n;
}

/** A version number, or an alias (`production`, `candidate`) resolved by the registry. */
function versionRef(raw: string): number | string {
  return /^[0-9]+$/.test(raw) ? versionNumber(raw) : raw;
}

const SetAliasSchema = z.object({ version: z.number().int().positive() }).strict();
const PushQuerySchema = z.object({ expiresInDays: z.coerce.number().gt(0).max(3650).optional() });

function parseSample(text: string): SampleInput {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`sampleInput is not valid JSON: ${(err as Error).message}`, {
      code: 'invalid_sample_input',
    });
  }
  const parsed = SampleInputSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ValidationError(`sampleInput: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`, {
      code: 'invalid_sample_input',
    });
  }
  return parsed.data;
}

export function modelRoutes(deps: ApiDeps): Hono<Env> {
  const app = new Hono<Env>();
  const maxBytes = deps.models.maxModelBytes;

  app.post(
    '/models/:name/versions',
    requireRole(deps.tokens, 'operator'),
    bodyLimit({
      // Multipart adds a little framing and the sample input around the model.
      maxSize: maxBytes + 16 * 1024 * 1024,
      onError: () => {
        throw new TooLargeError(`request body exceeds the fleet's model limit of ${maxBytes} bytes`);
      },
    }),
    async (c) => {
      const name = modelName(c.req.param('name'));
      const daysRaw = c.req.query('expiresInDays');
      const pushQuery = PushQuerySchema.safeParse({ expiresInDays: daysRaw });
      if (!pushQuery.success) {
        throw new ValidationError(`expiresInDays must be a number in (0, 3650], got '${daysRaw}'`);
      }
      const expiresInDays = pushQuery.data.expiresInDays;
      const contentType = c.req.header('content-type') ?? '';
      let bytes: Uint8Array;
      let sample: SampleInput | undefined;
      let referenceStats: unknown;
      if (contentType.startsWith('multipart/form-data')) {
        let form: Awaited<ReturnType<typeof c.req.parseBody>>;
        try {
          form = await c.req.parseBody();
        } catch (err) {
          throw new ValidationError(`the multipart body cannot be parsed: ${(err as Error).message}`);
        }
        const model = form['model'];
        if (!(model instanceof File))
          throw new ValidationError('multipart body needs a file field named "model"');
        bytes = new Uint8Array(await model.arrayBuffer());
        const statsField = form['referenceStats'];
        if (statsField !== undefined) {
          const text = typeof statsField === 'string' ? statsField : await (statsField as File).text();
          try {
            referenceStats = JSON.parse(text);
          } catch (err) {
            throw new ValidationError(`referenceStats is not JSON: ${(err as Error).message}`, {
              code: 'invalid_reference_stats',
            });
          }
        }
        const sampleField = form['sampleInput'];
        if (sampleField !== undefined) {
          sample = parseSample(
            typeof sampleField === 'string' ? sampleField : await (sampleField as File).text(),
          );
        }
      } else {
        bytes = new Uint8Array(await c.req.arrayBuffer());
      }
      if (bytes.length === 0)
        throw new ValidationError('the request has no model bytes', { code: 'invalid_model' });
      const record = await deps.models.push(name, bytes, {
        actor: c.get('principal').name,
        sample,
        expiresInDays,
        referenceStats,
      });
      deps.log.info(
        { model: name, version: record.version, sha256: record.artifact.sha256 },
        'model version registered',
      );
      return c.json({ ...record, aliases: [] }, 201);
    },
  );

  app.get('/models', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json({ models: await deps.models.list() }),
  );

  app.get('/models/:name/versions', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json({ versions: await deps.models.listVersions(modelName(c.req.param('name'))) }),
  );

  app.get('/models/:name/versions/:version', requireRole(deps.tokens, 'viewer'), async (c) => {
    const name = modelName(c.req.param('name'));
    const record = await deps.models.resolve(name, versionRef(c.req.param('version')));
    const aliases = Object.values(await deps.models.aliases(name))
      .filter((a) => a.version === record.version)
      .map((a) => a.alias);
    return c.json({ ...record, aliases });
  });

  app.get('/models/:name/versions/:version/lineage', requireRole(deps.tokens, 'viewer'), async (c) => {
    const record = await deps.models.resolve(
      modelName(c.req.param('name')),
      versionRef(c.req.param('version')),
    );
    return c.json(await lineageOf(deps, record));
  });

  app.get('/models/:name/aliases', requireRole(deps.tokens, 'viewer'), async (c) => {
    const name = modelName(c.req.param('name'));
    await deps.models.listVersions(name); // 404 for an unknown model
    return c.json({ aliases: await deps.models.aliases(name) });
  });

  // Promote: point an alias (normally `production`) at a version by hand.
  app.put('/models/:name/aliases/:alias', requireRole(deps.tokens, 'operator'), async (c) => {
    const name = modelName(c.req.param('name'));
    const alias = parseAlias(c.req.param('alias'));
    const { version } = await jsonBody(c, SetAliasSchema);
    const principal = c.get('principal').name;
    const record = await deps.models.setAlias(name, alias, version, principal);
    deps.log.info({ model: name, alias, version, previous: record.previous, by: principal }, 'alias moved');
    return c.json(record);
  });

  return app;
}

export const modelRouteDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/models/:name/versions',
    summary:
      'Push an ONNX model (multipart: model, optional sample input); validated in ONNX Runtime and signed',
    access: 'operator',
    tag: 'models',
    bodyType: 'multipart/form-data',
    query: PushQuerySchema,
    success: 201,
  },
  {
    method: 'get',
    path: '/models',
    summary: 'Models with their latest version and aliases',
    access: 'viewer',
    tag: 'models',
  },
  {
    method: 'get',
    path: '/models/:name/versions',
    summary: "A model's versions",
    access: 'viewer',
    tag: 'models',
  },
  {
    method: 'get',
    path: '/models/:name/versions/:version',
    summary: 'One version (or an alias): manifest, lineage, aliases',
    access: 'viewer',
    tag: 'models',
  },
  {
    method: 'get',
    path: '/models/:name/versions/:version/lineage',
    summary: 'Devices → snapshot → run → version → rollouts',
    access: 'viewer',
    tag: 'models',
  },
  {
    method: 'get',
    path: '/models/:name/aliases',
    summary: "A model's aliases",
    access: 'viewer',
    tag: 'models',
  },
  {
    method: 'put',
    path: '/models/:name/aliases/:alias',
    summary: 'Point an alias (production, candidate) at a version',
    access: 'operator',
    tag: 'models',
    body: SetAliasSchema,
  },
];
