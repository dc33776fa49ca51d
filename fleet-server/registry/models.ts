/**
 * Model versions: push (store the artifact, inspect it in ONNX Runtime, sign its manifest), list and get.
 * Versions are integers, strictly increasing per model name; pushes of one name are serialized so two
 * concurrent pushes never get the same number.
 *
 * Storage: collection `model-versions`, key `<name>/<version zero-padded to 10>` → ModelVersionRecord, so a
 * prefix scan of `<name>/` lists a model's versions in order; collection `model-aliases`, key
 * `<name>/<alias>` → AliasRecord.
 *
 * Aliases name the version a role points at: `candidate` (set by training), `production` (moved when a
 * rollout of a version completes, or by an operator's promote). A reference `name@<alias>` resolves to the
 * version behind it wherever a version is expected.
 *
 * Variants: a version holds one or more builds of the same model (fp32 and fp16, a build per profile), each
 * its own artifact and signed manifest (`manifest.variant`). Every variant of a version has the same inputs and
 * outputs, so rollouts, shadow comparisons and drift statistics mean the same whichever one a device runs.
 * The record's `variant`/`manifest`/`artifact` are the variant the version was created with; later ones are
 * in `addedVariants` (variants.ts).
 *
 * Stored records are migrated on read (`MODEL_VERSION_MIGRATIONS`, store/migrations.ts): the registry sees
 * only the current shape.
 */
import { z } from 'zod';
import { ReferenceStatsSchema } from '../../shared/drift/reference.js';
import { ConflictError, NotFoundError, TooLargeError, ValidationError } from '../../shared/errors.js';
import { MANIFEST_SCHEMA, type Manifest, ModelNameSchema, signManifest } from '../../shared/manifest.js';
import type { ArtifactStore } from '../store/artifacts.js';
import type { Collection } from '../store/db.js';
import { KeyedMutex } from '../store/lock.js';
import { firstVersion, type Migrations, migrated } from '../store/migrations.js';
import { type Inspection, inspectModel, type OrtApi, type SampleInput } from './inspect.js';
import type { KeyRing } from './keys.js';
import { ioDifference, MAX_VARIANTS, variantName, variantsOf } from './variants.js';

export interface ModelVersionRecord {
  name: string;
  version: number;
  createdAt: string;
  createdBy: string;
  /**
   * The name of the variant the version was created with, its first. `manifest.variant` says the same, except
   * in versions pushed before variants existed: their manifest was signed without the field (it reads as
   * `default`), and a signed manifest is never edited, so the name is kept beside it.
   */
  variant: string;
  /** The first variant's signed manifest. */
  manifest: Manifest;
  artifact: { sha256: string; size: number };
  /** Variants added to the version later, in the order they were added; absent when there are none. */
  addedVariants?: VariantRecord[];
  /** Where the version came from: set for versions trained by the fleet, null for pushed files. */
  lineage: Lineage | null;
}

/** One build of a version: its own artifact and signed manifest. */
export interface VariantRecord {
  variant: string;
  createdAt: string;
  createdBy: string;
  manifest: Manifest;
  artifact: { sha256: string; size: number };
}

/** A version as the API shows it: every variant listed, the first (the record's own manifest) included. */
export type ModelVersionView = Omit<ModelVersionRecord, 'addedVariants' | 'variant'> & {
  variants: VariantRecord[];
};

/** A trained version's provenance: enough to reproduce it and to trace it back to device data. */
export interface Lineage {
  run: string;
  task: string;
  snapshot: string;
  /** The training configuration as the job used it (defaults resolved). */
  config: Record<string, unknown>;
  seed: number;
  /** The fleet's code that trained it: package version, plus the git commit when known. */
  codeVersion: string;
  backend: string;
  /** Holdout metrics of this version, from ONNX Runtime's outputs. */
  metrics: Record<string, number>;
  /** The production version evaluated on the same holdout, or null (none, or not comparable: `reason`). */
  champion: { version: number; metrics: Record<string, number> | null; reason: string | null } | null;
  /** Both models on the holdout samples captured since `since` (retrains after drift); null unless asked for. */
  recent: {
    since: string;
    rows: number;
    metrics: Record<string, number>;
    champion: Record<string, number> | null;
  } | null;
  /** What started the run when the retrain loop did: the retrain record and why it fired; null otherwise. */
  trigger: { retrain: string; kind: 'drift' | 'concept' | 'manual'; reason: string } | null;
  trainRows: number;
  holdoutRows: number;
  parityMaxAbsDiff: number;
  startedAt: string;
  durationMs: number;
}

/**
 * The `model-versions` collection's schema versions. v2: the first variant's name is a field of the record
 * (`variant`: `manifest.variant`, or `default` for a manifest signed before variants), and a trained
 * version's lineage always says whether it was judged on recent data and what triggered it (`recent` and
 * `trigger`, null in versions trained before the retrain loop existed).
 */
export const MODEL_VERSION_MIGRATIONS: Migrations<ModelVersionRecord> = {
  name: 'model-versions',
  version: 2,
  steps: [
    (v1) => {
      const manifest = v1.manifest as { variant?: string };
      const lineage = v1.lineage as Record<string, unknown> | null;
      return {
        ...v1,
        variant: manifest.variant ?? 'default',
        lineage: lineage && { ...lineage, recent: lineage.recent ?? null, trigger: lineage.trigger ?? null },
      };
    },
  ],
};

export const ALIASES = ['production', 'candidate'] as const;
export type Alias = (typeof ALIASES)[number];

export interface AliasRecord {
  name: string;
  alias: Alias;
  version: number;
  /** The version it pointed at before, if any. */
  previous: number | null;
  updatedAt: string;
  /** An operator's token name, or `rollout:<id>` / `training:<run>` for automatic moves. */
  updatedBy: string;
}

export interface ModelSummary {
  name: string;
  latestVersion: number;
  versionCount: number;
  updatedAt: string;
  /** Versions behind the aliases, null when unset. */
  production: number | null;
  candidate: number | null;
}

export function versionKey(name: string, version: number): string {
  return `${name}/${String(version).padStart(10, '0')}`;
}

/** What a push (of a new version, or of a variant) may say besides the model bytes. */
export interface PushOptions {
  actor: string;
  /** The variant's name (`default` when absent). */
  variant?: string | undefined;
  sample?: SampleInput | undefined;
  expiresInDays?: number | undefined;
  /** Signed into the manifest (drift reference); trained versions have them. */
  referenceStats?: unknown;
  /** Signed into the manifest's labels. */
  labels?: Record<string, string> | undefined;
}

export class ModelRegistry {
  private readonly lock = new KeyedMutex();
  private readonly versions: Collection<ModelVersionRecord>;
  private readonly aliasRecords: Collection<AliasRecord>;

  /** `versions` and `aliasRecords` as stored: the registry applies their migrations to them. */
  constructor(
    versions: Collection<ModelVersionRecord>,
    aliasRecords: Collection<AliasRecord>,
    private readonly artifacts: ArtifactStore,
    private readonly keys: KeyRing,
    private readonly ort: OrtApi,
    private readonly options: { maxModelBytes: number; manifestValidityDays: number; now: () => Date },
  ) {
    this.versions = migrated(versions, MODEL_VERSION_MIGRATIONS);
    this.aliasRecords = migrated(aliasRecords, firstVersion('model-aliases'));
  }

  get maxModelBytes(): number {
    return this.options.maxModelBytes;
  }

  /** Register a version. Async throughout: a bad name or an oversized model rejects, it never throws. */
  async push(
    name: string,
    bytes: Uint8Array,
    options: PushOptions & {
      lineage?: Lineage | undefined;
    },
  ): Promise<ModelVersionRecord> {
    ModelNameSchema.parse(name);
    const variant = variantName(options.variant);
    this.checkSize(bytes);
    return this.lock.run(name, async () => {
      const inspection = await inspectModel(this.ort, bytes, options.sample);
      checkReferenceStats(options.referenceStats, inspection.inputs);
      const latest = await this.latest(name);
      const version = (latest?.version ?? 0) + 1;
      const built = await this.build(name, version, variant, bytes, inspection, options);
      const record: ModelVersionRecord = {
        name,
        version,
        createdAt: built.createdAt,
        createdBy: built.createdBy,
        variant,
        manifest: built.manifest,
        artifact: built.artifact,
        lineage: options.lineage ?? null,
      };
      await this.versions.put(versionKey(name, version), record);
      return record;
    });
  }

  /**
   * Add a variant to an existing version: its own artifact and signed manifest under the same name and version.
   * Refused when the version already has a variant of that name (ConflictError), or when the model's inputs or
   * outputs differ from the version's (ValidationError naming the difference). Drift statistics and labels
   * carry over from the version's first variant unless given.
   */
  async addVariant(
    name: string,
    version: number,
    bytes: Uint8Array,
    options: PushOptions & { variant: string },
  ): Promise<ModelVersionRecord> {
    ModelNameSchema.parse(name);
    const variant = variantName(options.variant);
    this.checkSize(bytes);
    return this.lock.run(name, async () => {
      const record = await this.get(name, version);
      const existing = variantsOf(record);
      if (existing.some((v) => v.variant === variant)) {
        throw new ConflictError(
          `${name}@${version} already has a variant '${variant}'; push a new version to change it`,
          'variant_exists',
        );
      }
      if (existing.length >= MAX_VARIANTS) {
        throw new ConflictError(
          `${name}@${version} already has ${existing.length} variants, the most a version may hold`,
          'too_many_variants',
        );
      }
      const inspection = await inspectModel(this.ort, bytes, options.sample);
      const base = record.manifest;
      const io = ioDifference(base, inspection);
      if (io) {
        throw new ValidationError(
          `variant '${variant}' does not fit ${name}@${version}: ${io} (every variant of a version has the same inputs and outputs)`,
          { code: 'variant_io_mismatch' },
        );
      }
      const referenceStats = options.referenceStats ?? base.referenceStats;
      checkReferenceStats(referenceStats, inspection.inputs);
      const built = await this.build(name, version, variant, bytes, inspection, {
        ...options,
        referenceStats,
        labels: options.labels ?? base.labels,
      });
      const next: ModelVersionRecord = {
        ...record,
        addedVariants: [...(record.addedVariants ?? []), built],
      };
      await this.versions.put(versionKey(name, version), next);
      return next;
    });
  }

  private checkSize(bytes: Uint8Array): void {
    if (bytes.length > this.options.maxModelBytes) {
      throw new TooLargeError(
        `model is ${bytes.length} bytes, the fleet accepts at most ${this.options.maxModelBytes}`,
      );
    }
  }

  /** Store the artifact and sign the variant's manifest (the model was inspected already). */
  private async build(
    name: string,
    version: number,
    variant: string,
    bytes: Uint8Array,
    inspection: Inspection,
    options: PushOptions,
  ): Promise<VariantRecord> {
    const artifact = await this.artifacts.put(bytes);
    const now = this.options.now();
    const days = options.expiresInDays ?? this.options.manifestValidityDays;
    const manifest = signManifest(
      {
        schema: MANIFEST_SCHEMA,
        name,
        version,
        variant,
        artifact: { sha256: artifact.sha256, size: artifact.size, mediaType: 'application/onnx' },
        inputs: inspection.inputs,
        outputs: inspection.outputs,
        opset: inspection.opset,
        createdAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + days * 86_400_000).toISOString(),
        golden: inspection.golden,
        referenceStats: options.referenceStats ?? null,
        labels: options.labels ?? {},
      },
      this.keys.signing,
    );
    return { variant, createdAt: now.toISOString(), createdBy: options.actor, manifest, artifact };
  }

  async latest(name: string): Promise<ModelVersionRecord | undefined> {
    const all = await this.versions.values(`${name}/`);
    return all[all.length - 1];
  }

  async get(name: string, version: number): Promise<ModelVersionRecord> {
    const record = await this.versions.get(versionKey(name, version));
    if (!record) throw new NotFoundError('model version', `${name}@${version}`);
    return record;
  }

  /** A version by number or by alias (`production`, `candidate`). */
  async resolve(name: string, ref: number | string): Promise<ModelVersionRecord> {
    if (typeof ref === 'number') return this.get(name, ref);
    const alias = parseAlias(ref);
    const record = await this.aliasRecords.get(`${name}/${alias}`);
    if (!record) throw new NotFoundError('model alias', `${name}@${alias}`);
    return this.get(name, record.version);
  }

  /** Point an alias at a version (which must exist). `moved` is false when it already pointed there. */
  async setAlias(
    name: string,
    alias: Alias,
    version: number,
    actor: string,
  ): Promise<AliasRecord & { moved: boolean }> {
    await this.get(name, version);
    return this.lock.run(`${name}@${alias}`, async () => {
      const key = `${name}/${alias}`;
      const current = await this.aliasRecords.get(key);
      if (current?.version === version) return { ...current, moved: false };
      const record: AliasRecord = {
        name,
        alias,
        version,
        previous: current?.version ?? null,
        updatedAt: this.options.now().toISOString(),
        updatedBy: actor,
      };
      await this.aliasRecords.put(key, record);
      return { ...record, moved: true };
    });
  }

  /** A model's aliases, by alias name. */
  async aliases(name: string): Promise<Partial<Record<Alias, AliasRecord>>> {
    const out: Partial<Record<Alias, AliasRecord>> = {};
    for (const record of await this.aliasRecords.values(`${name}/`)) out[record.alias] = record;
    return out;
  }

  async listVersions(name: string): Promise<ModelVersionRecord[]> {
    const all = await this.versions.values(`${name}/`);
    if (all.length === 0) throw new NotFoundError('model', name);
    return all;
  }

  async list(): Promise<ModelSummary[]> {
    const byName = new Map<string, ModelSummary>();
    for (const record of await this.versions.values()) {
      const current = byName.get(record.name);
      byName.set(record.name, {
        name: record.name,
        latestVersion: Math.max(current?.latestVersion ?? 0, record.version),
        versionCount: (current?.versionCount ?? 0) + 1,
        updatedAt: current && current.updatedAt > record.createdAt ? current.updatedAt : record.createdAt,
        production: null,
        candidate: null,
      });
    }
    for (const alias of await this.aliasRecords.values()) {
      const summary = byName.get(alias.name);
      if (summary) summary[alias.alias] = alias.version;
    }
    return [...byName.values()];
  }
}

export function parseAlias(raw: string): Alias {
  if ((ALIASES as readonly string[]).includes(raw)) return raw as Alias;
  throw new ValidationError(`'${raw}' is not a version number or an alias (${ALIASES.join(', ')})`, {
    code: 'invalid_version_ref',
  });
}

/**
 * Reference statistics must describe the model's input: one entry per feature of its first input (devices
 * count live values column by column against them). Refused with the reason otherwise.
 */
function checkReferenceStats(
  stats: unknown,
  inputs: readonly { name: string; shape: readonly (number | string)[] }[],
): void {
  if (stats === undefined || stats === null) return;
  const parsed = ReferenceStatsSchema.safeParse(stats);
  if (!parsed.success)
    throw new ValidationError(
      `reference statistics: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`,
      {
        code: 'invalid_reference_stats',
      },
    );
  const width = inputs[0]?.shape.at(-1);
  if (inputs.length !== 1 || typeof width !== 'number' || width !== parsed.data.features.length)
    throw new ValidationError(
      `reference statistics describe ${parsed.data.features.length} features; the model's input ${inputs[0]?.name ?? ''} has shape [${inputs[0]?.shape.join(', ') ?? ''}]`,
      { code: 'invalid_reference_stats' },
    );
}
