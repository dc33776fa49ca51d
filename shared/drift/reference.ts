/**
 * The reference statistics a model version ships with, signed inside its manifest (`referenceStats`): per raw
 * feature, quantile bin edges with the share of training rows per bin (plus mean/std/min/max), and the
 * distribution of the model's predictions on the same rows. The fleet computes them at training
 * (fleet-server/training/reference-stats.ts); devices count live values over the same bins (bins.ts).
 */
import { z } from 'zod';

export const REFERENCE_STATS_SCHEMA = 'edgefleet.reference-stats/v1';

const BinsSchema = z
  .object({
    edges: z.array(z.number()).min(1),
    /** Share of rows per bin; sums to 1. */
    proportions: z.array(z.number().min(0).max(1)).min(1),
  })
  .refine((b) => b.proportions.length === Math.max(1, b.edges.length - 1), {
    message: 'proportions must have one entry per bin (edges − 1, or 1 for a single edge)',
  })
  .refine((b) => b.edges.every((e, i) => i === 0 || e > b.edges[i - 1]!), {
    message: 'edges must be strictly increasing',
  });

export const FeatureStatsSchema = z.object({
  name: z.string().min(1),
  mean: z.number(),
  std: z.number().nonnegative(),
  min: z.number(),
  max: z.number(),
  bins: BinsSchema,
});
export type FeatureStats = z.infer<typeof FeatureStatsSchema>;

export const PredictionStatsSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('classification'),
    classes: z.array(z.string()).min(2),
    /** Share of rows whose argmax is each class. */
    proportions: z.array(z.number().min(0).max(1)),
  }),
  z.object({ kind: z.literal('regression'), bins: BinsSchema }),
]);
export type PredictionStats = z.infer<typeof PredictionStatsSchema>;

export const ReferenceStatsSchema = z.object({
  schema: z.literal(REFERENCE_STATS_SCHEMA),
  /** Training rows the statistics describe. */
  rows: z.number().int().positive(),
  features: z.array(FeatureStatsSchema).min(1),
  predictions: PredictionStatsSchema,
});
export type ReferenceStats = z.infer<typeof ReferenceStatsSchema>;
