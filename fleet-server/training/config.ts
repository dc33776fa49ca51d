/**
 * The training job's configuration: one zod schema (a wire type too, in shared/api/pool.ts: runs carry it),
 * defaults resolved once by `parseTrainConfig`.
 */
import type { z } from 'zod';
import { TrainConfigSchema } from '../../shared/api/pool.js';

export { TrainConfigSchema };

export type TrainConfig = z.infer<typeof TrainConfigSchema>;
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;

export function parseTrainConfig(input: unknown): TrainConfig {
  return TrainConfigSchema.parse(input);
}
