/**
 * The model registry on the wire: versions with their variants (each a signed manifest and an artifact),
 * aliases, summaries and lineage. Pure zod; the routes map the stored version record (whose added variants
 * are kept apart from the first) to `ModelVersion`, which lists every variant.
 */
import { z } from 'zod';
import { ManifestSchema } from '../manifest-schema.js';
import { ALIASES } from './common.js';
import { SnapshotSchema, TRAINING_RUN_STATUSES, TrainConfigSchema } from './pool.js';
import { ROLLOUT_PHASES, RolloutSummarySchema } from './rollouts.js';

// ---- requests -------------------------------------------------------------------------------------

/** `PUT /models/:name/aliases/:alias`. */
export const SetAliasRequestSchema = z.object({ version: z.number().int().positive() }).strict();
export type SetAliasRequest = z.infer<typeof SetAliasRequestSchema>;

// ---- responses ------------------------------------------------------------------------------------

export const ArtifactRefSchema = z.object({ sha256: z.string(), size: z.number().int().nonnegative() });

/** One build of a version: its own artifact and signed manifest. */
export const ModelVariantSchema = z.object({
  variant: z.string(),
  createdAt: z.string(),
  createdBy: z.string(),
  manifest: ManifestSchema,
  artifact: ArtifactRefSchema,
});
export type ModelVariant = z.infer<typeof ModelVariantSchema>;

/** A trained version's provenance: enough to reproduce it and to trace it back to device data. */
export const VersionLineageSchema = z.object({
  run: z.string(),
  task: z.string(),
  snapshot: z.string(),
  config: z.record(z.string(), z.unknown()),
  seed: z.number(),
  codeVersion: z.string(),
  backend: z.string(),
  metrics: z.record(z.string(), z.number()),
  champion: z
    .object({
      version: z.number(),
      metrics: z.record(z.string(), z.number()).nullable(),
      reason: z.string().nullable(),
    })
    .nullable(),
  recent: z
    .object({
      since: z.string(),
      rows: z.number(),
      metrics: z.record(z.string(), z.number()),
      champion: z.record(z.string(), z.number()).nullable(),
    })
    .nullable()
    .optional(),
  trigger: z
    .object({ retrain: z.string(), kind: z.enum(['drift', 'concept', 'manual']), reason: z.string() })
    .nullable()
    .optional(),
  trainRows: z.number(),
  holdoutRows: z.number(),
  parityMaxAbsDiff: z.number(),
  startedAt: z.string(),
  durationMs: z.number(),
});
export type VersionLineage = z.infer<typeof VersionLineageSchema>;

/** A version as the API shows it: its first variant's manifest and artifact, and every variant listed. */
export const ModelVersionSchema = z.object({
  name: z.string(),
  version: z.number().int().positive(),
  createdAt: z.string(),
  createdBy: z.string(),
  manifest: ManifestSchema,
  artifact: ArtifactRefSchema,
  lineage: VersionLineageSchema.nullable(),
  variants: z.array(ModelVariantSchema),
});
export type ModelVersionBase = z.infer<typeof ModelVersionSchema>;

/** One version (push, add-variant, get): with the aliases pointing at it. */
export const ModelVersionWithAliasesSchema = ModelVersionSchema.extend({ aliases: z.array(z.enum(ALIASES)) });
export type ModelVersion = z.infer<typeof ModelVersionWithAliasesSchema>;

export const ModelVersionListSchema = z.object({ versions: z.array(ModelVersionSchema) });

export const ModelSummarySchema = z.object({
  name: z.string(),
  latestVersion: z.number(),
  versionCount: z.number(),
  updatedAt: z.string(),
  /** Versions behind the aliases, null when unset. */
  production: z.number().nullable(),
  candidate: z.number().nullable(),
});
export type ModelSummary = z.infer<typeof ModelSummarySchema>;

export const ModelListSchema = z.object({ models: z.array(ModelSummarySchema) });

export const AliasRecordSchema = z.object({
  name: z.string(),
  alias: z.enum(ALIASES),
  version: z.number(),
  /** The version it pointed at before, if any. */
  previous: z.number().nullable(),
  updatedAt: z.string(),
  /** An operator's token name, or `rollout:<id>` / `training:<run>` for automatic moves. */
  updatedBy: z.string(),
});
export type AliasRecord = z.infer<typeof AliasRecordSchema>;

export const AliasesSchema = z.object({ aliases: z.partialRecord(z.enum(ALIASES), AliasRecordSchema) });
export type Aliases = z.infer<typeof AliasesSchema>;

/** `PUT /models/:name/aliases/:alias`: the alias as it now is, and whether it moved. */
export const SetAliasResponseSchema = AliasRecordSchema.extend({ moved: z.boolean() });
export type SetAliasResponse = z.infer<typeof SetAliasResponseSchema>;

/** Devices → snapshot → run → version → rollouts. */
export const LineageSchema = z.object({
  sources: z.array(
    z.object({ source: z.string(), kind: z.enum(['device', 'import', 'other']), samples: z.number() }),
  ),
  snapshot: SnapshotSchema.nullable(),
  run: z
    .object({
      id: z.string(),
      task: z.string(),
      status: z.enum(TRAINING_RUN_STATUSES),
      backend: z.string().nullable(),
      createdAt: z.string(),
      createdBy: z.string(),
      startedAt: z.string().nullable(),
      finishedAt: z.string().nullable(),
      config: TrainConfigSchema,
    })
    .nullable(),
  version: z.object({
    name: z.string(),
    version: z.number(),
    createdAt: z.string(),
    createdBy: z.string(),
    artifact: ArtifactRefSchema,
    lineage: VersionLineageSchema.nullable(),
    aliases: z.array(z.enum(ALIASES)),
  }),
  rollouts: z.array(
    z.object({
      id: z.string(),
      createdAt: z.string(),
      phase: z.enum(ROLLOUT_PHASES),
      summary: RolloutSummarySchema,
    }),
  ),
});
export type Lineage = z.infer<typeof LineageSchema>;
