/**
 * A model version's variants: the list of them (the record's own manifest first, then the ones added later),
 * lookups by name, the API's view of a version, the rule for variant names, and the I/O contract every variant
 * of a version shares (same inputs and outputs, so rollouts, shadow and drift mean the same on each). Pure.
 */
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { VariantNameSchema } from '../../shared/manifest.js';
import type { TensorSpec } from '../../shared/tensors.js';
import type { ModelVersionRecord, ModelVersionView, VariantRecord } from './models.js';

/** Most variants one version may hold. */
export const MAX_VARIANTS = 16;

/** Every variant of a version, the one it was created with first. */
export function variantsOf(record: ModelVersionRecord): VariantRecord[] {
  return [
    {
      variant: record.variant,
      createdAt: record.createdAt,
      createdBy: record.createdBy,
      manifest: record.manifest,
      artifact: record.artifact,
    },
    ...(record.addedVariants ?? []),
  ];
}

/** The version's variant by name (NotFoundError when it has none of that name). */
export function variantOf(record: ModelVersionRecord, variant: string): VariantRecord {
  const found = variantsOf(record).find((v) => v.variant === variant);
  if (!found) throw new NotFoundError('model variant', `${record.name}@${record.version}/${variant}`);
  return found;
}

export function versionView(record: ModelVersionRecord): ModelVersionView {
  const { addedVariants: _added, variant: _first, ...rest } = record;
  return { ...rest, variants: variantsOf(record) };
}

/** A variant name from a push (`default` when none is given), or a ValidationError naming the rule. */
export function variantName(raw: string | undefined): string {
  if (raw === undefined) return 'default';
  const parsed = VariantNameSchema.safeParse(raw);
  if (!parsed.success)
    throw new ValidationError(`invalid variant '${raw}': ${parsed.error.issues[0]?.message}`, {
      code: 'invalid_variant',
    });
  return parsed.data;
}

/**
 * How a model's inputs and outputs differ from a version's, in words (null: they match). Names, dtypes and
 * fixed dims must match; symbolic dims match any symbolic dim (exporters name them differently).
 */
export function ioDifference(
  version: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] },
  model: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] },
): string | null {
  for (const kind of ['inputs', 'outputs'] as const) {
    const want = version[kind];
    const got = model[kind];
    const noun = kind.slice(0, -1);
    const names = (specs: readonly TensorSpec[]) => specs.map((s) => s.name).join(', ');
    if (want.length !== got.length || want.some((w) => !got.some((g) => g.name === w.name)))
      return `${kind} are [${names(got)}], the version's are [${names(want)}]`;
    for (const w of want) {
      const g = got.find((x) => x.name === w.name)!;
      if (g.dtype !== w.dtype) return `${noun} ${w.name} is ${g.dtype}, the version's is ${w.dtype}`;
      const sameShape =
        g.shape.length === w.shape.length &&
        g.shape.every((d, i) => {
          const v = w.shape[i]!;
          return typeof d === 'number' || typeof v === 'number' ? d === v : true;
        });
      if (!sameShape)
        return `${noun} ${w.name} has shape [${g.shape.join(', ')}], the version's has [${w.shape.join(', ')}]`;
    }
  }
  return null;
}
