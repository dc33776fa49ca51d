/**
 * Firmware profiles: what a class of hardware can run and how. One JSON file per target lives in
 * `firmware-profiles/`; every file is validated against this schema (by a test, and at load).
 * Execution providers are tried in the listed order; CPU should be last so a model always loads somewhere.
 */
import { z } from 'zod';

export const EXECUTION_PROVIDERS = ['tensorrt', 'cuda', 'coreml', 'dml', 'cpu'] as const;
export type ExecutionProviderName = (typeof EXECUTION_PROVIDERS)[number];

const DeviceIdSchema = z.number().int().min(0).max(63);

/**
 * Each provider with the options it takes (unknown keys are refused, so a typo cannot silently do nothing).
 * Options are optional; the agent applies ONNX Runtime's defaults. TensorRT's engine cache path is relative
 * to the agent's data directory, the only place it may write.
 */
export const ExecutionProviderSchema = z.discriminatedUnion('name', [
  z
    .object({
      name: z.literal('tensorrt'),
      options: z
        .object({
          deviceId: DeviceIdSchema.optional(),
          fp16Enable: z.boolean().optional(),
          int8Enable: z.boolean().optional(),
          engineCacheEnable: z.boolean().optional(),
          engineCachePath: z
            .string()
            .min(1)
            .max(200)
            .regex(
              /^(?!\/)(?!.*(^|\/)\.\.(\/|$))[\w./-]+$/,
              'engineCachePath: a relative path inside the data directory',
            )
            .optional(),
        })
        .strict()
        .default({}),
    })
    .strict(),
  z
    .object({
      name: z.literal('cuda'),
      options: z.object({ deviceId: DeviceIdSchema.optional() }).strict().default({}),
    })
    .strict(),
  z
    .object({
      name: z.literal('coreml'),
      options: z
        .object({
          /** Run on the CPU through Core ML (debugging). */
          cpuOnly: z.boolean().optional(),
          /** Only on devices with an Apple Neural Engine. */
          aneOnly: z.boolean().optional(),
          /** Only models whose input shapes are static. */
          staticShapesOnly: z.boolean().optional(),
        })
        .strict()
        .default({}),
    })
    .strict(),
  z
    .object({
      name: z.literal('dml'),
      options: z.object({ deviceId: DeviceIdSchema.optional() }).strict().default({}),
    })
    .strict(),
  z
    .object({
      name: z.literal('cpu'),
      options: z.object({ useArena: z.boolean().optional() }).strict().default({}),
    })
    .strict(),
]);
export type ExecutionProvider = z.infer<typeof ExecutionProviderSchema>;

export const FirmwareProfileSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{1,63}$/, 'profile id: lowercase letters, digits, - and _'),
  description: z.string().max(500),
  arch: z.enum(['x64', 'arm64']),
  executionProviders: z.array(ExecutionProviderSchema).min(1),
  /** ONNX Runtime intra-op threads for each session (spinning is always off on devices). */
  intraOpThreads: z.number().int().min(1).max(256),
  interOpThreads: z.number().int().min(1).max(256).default(1),
  /** Memory the agent may use for models and sessions, in bytes. */
  memoryBudgetBytes: z.number().int().positive(),
  /** Largest model artifact this target accepts, in bytes. */
  maxModelBytes: z.number().int().positive(),
  /** Model variants this target accepts, in preference order: a rollout sends the first one a version has. */
  acceptsVariants: z.array(z.string().min(1)).min(1).default(['default']),
});
export type FirmwareProfile = z.infer<typeof FirmwareProfileSchema>;

export function parseFirmwareProfile(raw: unknown): FirmwareProfile {
  return FirmwareProfileSchema.parse(raw);
}
