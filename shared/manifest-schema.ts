/**
 * The model manifest's schemas, and the name rules they use: pure zod, no signing, so the wire contract
 * (shared/api/) and the browser console's types can name a manifest without pulling in node:crypto.
 * shared/manifest.ts re-exports all of it beside signing and verification.
 */
import { z } from 'zod';
import { TensorSpecSchema, TensorValueSchema } from './tensors.js';

export const MANIFEST_SCHEMA = 'edgefleet.manifest/v1';

export const ModelNameSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,127}$/,
    'model name: lowercase letters, digits, ".", "_" and "-", at most 128',
  );

/**
 * A variant name as the fleet registers new ones (`default`, `fp16`, `int8`, `jetson-orin`…). The manifest
 * field itself stays looser so manifests signed before this rule still verify.
 */
export const VariantNameSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,63}$/,
    'variant name: lowercase letters, digits, ".", "_" and "-", at most 64',
  );

export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'sha256: 64 lowercase hex digits');

export const GoldenSchema = z.object({
  inputs: z.array(TensorValueSchema).min(1),
  outputs: z.array(TensorValueSchema).min(1),
  /** A value passes when |actual - expected| <= abs + rel * |expected|. */
  tolerance: z.object({ abs: z.number().nonnegative(), rel: z.number().nonnegative() }),
});
export type Golden = z.infer<typeof GoldenSchema>;

export const SignatureSchema = z.object({ keyid: Sha256Schema, sig: z.string().min(1).max(256) });

export const UnsignedManifestSchema = z.object({
  schema: z.literal(MANIFEST_SCHEMA),
  name: ModelNameSchema,
  /** Strictly increasing per model name. */
  version: z.number().int().positive(),
  /** Which build of the version this is (fp32/fp16/per-profile); devices accept those their profile lists. */
  variant: z.string().min(1).max(64).default('default'),
  artifact: z.object({
    sha256: Sha256Schema,
    size: z.number().int().positive(),
    mediaType: z.literal('application/onnx').default('application/onnx'),
  }),
  inputs: z.array(TensorSpecSchema).min(1),
  outputs: z.array(TensorSpecSchema).min(1),
  opset: z.number().int().positive(),
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
  golden: GoldenSchema,
  /**
   * Reference statistics for drift detection (`edgefleet.reference-stats/v1`, shared/drift/reference.ts): written
   * by training or given at push (`--reference-stats`); null when the model has none and is not drift-monitored.
   */
  referenceStats: z.unknown().nullable().default(null),
  /** Free-form, signed metadata (lineage pointers, description). */
  labels: z.record(z.string(), z.string()).default({}),
});
export type UnsignedManifest = z.infer<typeof UnsignedManifestSchema>;
export type UnsignedManifestInput = z.input<typeof UnsignedManifestSchema>;

export const ManifestSchema = UnsignedManifestSchema.extend({
  signatures: z.array(SignatureSchema).min(1).max(8),
});
export type Manifest = z.infer<typeof ManifestSchema>;
