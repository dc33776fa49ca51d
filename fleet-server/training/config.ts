/**
 * The training job's configuration: one zod schema, defaults resolved once by `parseTrainConfig`.
 */
import { z } from 'zod';

export const TrainConfigSchema = z
  .object({
    /** classification: softmax over classes, cross-entropy; regression: one linear output, MSE. */
    kind: z.enum(['classification', 'regression']),
    /** Units of each hidden layer, input side first. */
    hidden: z.array(z.number().int().positive().max(4096)).max(16).default([64, 64]),
    /** Activation of every hidden layer. */
    activation: z.enum(['relu', 'tanh', 'sigmoid']).default('relu'),
    /** Dropout rate after each hidden layer while training (0 = none); masks come from the seed. */
    dropout: z.number().min(0).max(0.9).default(0),
    /** Optimizer and its learning rate. */
    optimizer: z
      .object({
        /** adam or plain sgd. */
        name: z.enum(['adam', 'sgd']).default('adam'),
        /** Step size. */
        learningRate: z.number().positive().max(10).default(0.001),
      })
      .strict()
      .prefault({}),
    /** Most passes over the training split. */
    epochs: z.number().int().positive().max(10_000).default(20),
    /** Rows per gradient step. */
    batchSize: z.number().int().positive().max(65_536).default(256),
    /** Stop when the holdout loss has not improved for a while; the best epoch's weights are kept. */
    earlyStopping: z
      .object({
        /** Epochs without improvement before stopping. */
        patience: z.number().int().positive().max(10_000).default(3),
        /** An epoch improves only if its holdout loss is below the best by more than this. */
        minDelta: z.number().nonnegative().default(0),
      })
      .strict()
      .prefault({}),
    /** Expected share of rows held out (chosen by hashing each record's id, independent of seed). */
    holdoutFraction: z.number().gt(0).lt(1).default(0.2),
    /** Seeds initializers, the per-epoch shuffle and dropout masks. */
    seed: z.number().int().nonnegative().max(0x7fffffff).default(42),
    /** Quantile bins per feature (and per regression output) in the reference statistics. */
    referenceBins: z.number().int().min(1).max(100).default(10),
  })
  .strict();

export type TrainConfig = z.infer<typeof TrainConfigSchema>;
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;

export function parseTrainConfig(input: unknown): TrainConfig {
  return TrainConfigSchema.parse(input);
}
