/**
 * Model versions: push (raw ONNX body, or multipart with a sample input) and read; variants of a version
 * (`?variant=` on a new version, or added to an existing one), each its own signed manifest and artifact.
 * The body is size-capped while it streams in, before anything is parsed.
 */
import type { Context } from 'hono';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import {
  AliasesSchema,
  LineageSchema,
  ModelListSchema,
  ModelVersionListSchema,
  ModelVersionWithAliasesSchema,
  SetAliasRequestSchema,
  SetAliasResponseSchema,
} from '../../shared/api/models.js';
import { TooLargeError, ValidationError } from '../../shared/errors.js';
import { ModelNameSchema, VariantNameSchema } from '../../shared/manifest.js';
import { type SampleInput, SampleInputSchema } from '../registry/inspect.js';
import { parseAlias } from '../registry/models.js';
import { variantName, versionView } from '../registry/variants.js';
import { lineageOf } from '../views/lineage.js';
import type { Env } from './auth.js';
import { requireRole } from './auth.js';
import type { ApiDeps } from './deps.js';
import { jsonBody } from './errors.js';
import type { RouteDoc } from './openapi.js';

/** What these routes reach of the fleet. */
type Deps = Pick<ApiDeps, 'devices' | 'log' | 'models' | 'rollouts' | 'snapshots' | 'tokens' | 'training'>;

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

const ExpiresSchema = z.coerce.number().gt(0).max(3650).optional();
const PushQuerySchema = z.object({
  expiresInDays: ExpiresSchema,
  /** The new version's variant (`default` when absent). */
  variant: VariantNameSchema.optional(),
});
const AddVariantQuerySchema = z.object({ expiresInDays: ExpiresSchema });

/** The push query, or a 400 naming the bad parameter. */
function pushQuery<T extends z.ZodObject>(schema: T, c: Context<Env>): z.infer<T> {
  const parsed = schema.safeParse(c.req.query());
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = String(issue.path[0] ?? '');
  if (key === 'expiresInDays')
    throw new ValidationError(`expiresInDays must be a number in (0, 3650], got '${c.req.query(key)}'`);
  throw new ValidationError(`invalid ${key} '${c.req.query(key)}': ${issue.message}`, {
    code: key === 'variant' ? 'invalid_variant' : 'invalid_input',
  });
}

/** The model bytes and what came with them: a raw ONNX body, or multipart (model, sampleInput, referenceStats). */
async function readUpload(
  c: Context<Env>,
): Promise<{ bytes: Uint8Array; sample: SampleInput | undefined; referenceStats: unknown }> {
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
  return { bytes, sample, referenceStats };
}

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

async function aliasesOf(deps: Deps, name: string, version: number) {
  return Object.values(await deps.models.aliases(name))
    .filter((a) => a.version === version)
    .map((a) => a.alias);
}

export function modelRoutes(deps: Deps): Hono<Env> {
  const app = new Hono<Env>();
  const maxBytes = deps.models.maxModelBytes;

  // Multipart adds a little framing and the sample input around the model.
  const uploadLimit = bodyLimit({
    maxSize: maxBytes + 16 * 1024 * 1024,
    onError: () => {
      throw new TooLargeError(`request body exceeds the fleet's model limit of ${maxBytes} bytes`);
    },
  });

  app.post('/models/:name/versions', requireRole(deps.tokens, 'operator'), uploadLimit, async (c) => {
    const name = modelName(c.req.param('name'));
    const { expiresInDays, variant } = pushQuery(PushQuerySchema, c);
    const { bytes, sample, referenceStats } = await readUpload(c);
    const record = await deps.models.push(name, bytes, {
      actor: c.get('principal').name,
      variant,
      sample,
      expiresInDays,
      referenceStats,
    });
    deps.log.info(
      {
        model: name,
        version: record.version,
        variant: record.manifest.variant,
        sha256: record.artifact.sha256,
      },
      'model version registered',
    );
    return c.json({ ...versionView(record), aliases: [] }, 201);
  });

  app.post(
    '/models/:name/versions/:version/variants/:variant',
    requireRole(deps.tokens, 'operator'),
    uploadLimit,
    async (c) => {
      const name = modelName(c.req.param('name'));
      const variant = variantName(c.req.param('variant'));
      const { expiresInDays } = pushQuery(AddVariantQuerySchema, c);
      const version = (await deps.models.resolve(name, versionRef(c.req.param('version')))).version;
      const { bytes, sample, referenceStats } = await readUpload(c);
      const record = await deps.models.addVariant(name, version, bytes, {
        actor: c.get('principal').name,
        variant,
        sample,
        expiresInDays,
        referenceStats,
      });
      const added = record.addedVariants!.at(-1)!;
      deps.log.info(
        { model: name, version, variant, sha256: added.artifact.sha256 },
        'model variant registered',
      );
      return c.json({ ...versionView(record), aliases: await aliasesOf(deps, name, version) }, 201);
    },
  );

  app.get('/models', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json({ models: await deps.models.list() }),
  );

  app.get('/models/:name/versions', requireRole(deps.tokens, 'viewer'), async (c) =>
    c.json({
      versions: (await deps.models.listVersions(modelName(c.req.param('name')))).map(versionView),
    }),
  );

  app.get('/models/:name/versions/:version', requireRole(deps.tokens, 'viewer'), async (c) => {
    const name = modelName(c.req.param('name'));
    const record = await deps.models.resolve(name, versionRef(c.req.param('version')));
    return c.json({ ...versionView(record), aliases: await aliasesOf(deps, name, record.version) });
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
    const { version } = await jsonBody(c, SetAliasRequestSchema);
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
    response: ModelVersionWithAliasesSchema,
    summary:
      'Push an ONNX model as a new version (multipart: model, optional sample input; `variant` names its build); validated in ONNX Runtime and signed',
    access: 'operator',
    tag: 'models',
    bodyType: 'multipart/form-data',
    query: PushQuerySchema,
    success: 201,
  },
  {
    method: 'post',
    path: '/models/:name/versions/:version/variants/:variant',
    response: ModelVersionWithAliasesSchema,
    summary:
      'Add a variant (another build: fp16, a per-profile build) to a version; same inputs and outputs as its other variants, signed on its own',
    access: 'operator',
    tag: 'models',
    bodyType: 'multipart/form-data',
    query: AddVariantQuerySchema,
    success: 201,
  },
  {
    method: 'get',
    path: '/models',
    response: ModelListSchema,
    summary: 'Models with their latest version and aliases',
    access: 'viewer',
    tag: 'models',
  },
  {
    method: 'get',
    path: '/models/:name/versions',
    response: ModelVersionListSchema,
    summary: "A model's versions",
    access: 'viewer',
    tag: 'models',
  },
  {
    method: 'get',
    path: '/models/:name/versions/:version',
    response: ModelVersionWithAliasesSchema,
    summary: 'One version (or an alias): manifest, variants, lineage, aliases',
    access: 'viewer',
    tag: 'models',
  },
  {
    method: 'get',
    path: '/models/:name/versions/:version/lineage',
    response: LineageSchema,
    summary: 'Devices → snapshot → run → version → rollouts',
    access: 'viewer',
    tag: 'models',
  },
  {
    method: 'get',
    path: '/models/:name/aliases',
    response: AliasesSchema,
    summary: "A model's aliases",
    access: 'viewer',
    tag: 'models',
  },
  {
    method: 'put',
    path: '/models/:name/aliases/:alias',
    response: SetAliasResponseSchema,
    summary: 'Point an alias (production, candidate) at a version',
    access: 'operator',
    tag: 'models',
    body: SetAliasRequestSchema,
  },
];
