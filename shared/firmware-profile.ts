/**
 * Firmware profiles: what a class of hardware can run and how. One JSON file per target lives in
 * `firmware-profiles/`; every file is validated against this schema (by a test, and at load).
 * Execution providers are tried in the listed order; CPU should be last so a model always loads somewhere.
 */
import { z } from 'zod';

export const EXECUTION_PROVIDERS = ['tensorrt', 'cuda', 'coreml', 'dml', 'cpu'] as const;
export type ExecutionProviderName = (typeof EXECUTION_PROVIDERS)[number];

export const ExecutionProviderSchema = z.object({
  name: z.enum(EXECUTION_PROVIDERS),
  /** Provider options passed to ONNX Runtime (device id, fp16, engine cache path…). */
  options: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});
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
  /** Model variants this target accepts, in preference order (issue 7 fills the registry side). */
  acceptsVariants: z.array(z.string().min(1)).min(1).default(['default']),
});
export type FirmwareProfile = z.infer<typeof FirmwareProfileSchema>;

export function parseFirmwareProfile(raw: unknown): FirmwareProfile {
  return FirmwareProfileSchema.parse(raw);
}
