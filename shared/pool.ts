/**
 * The data pool's vocabulary: tasks, samples, and the one validation function the fleet applies to every
 * sample it takes in (device batches, imports, the API); the CLI and the wire contract (shared/api/) name
 * them too. The agent does not import it: it captures requests as they come and the fleet judges them on
 * arrival, counting refusals per device and reason. Pure.
 *
 * A task names a problem: a flat numeric feature vector (named features), a label (classes, or a numeric
 * regression target) and the model name it feeds.
 */
import { z } from 'zod';
import { ModelNameSchema } from './manifest-schema.js';

export const TaskNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'task name: lowercase letters, digits, ".", "_" and "-", at most 64');

export const TaskSchema = z
  .object({
    name: TaskNameSchema,
    kind: z.enum(['classification', 'regression']),
    /** Feature names, in the order of the model's input vector. */
    features: z.array(z.string().min(1).max(128)).min(1).max(4096),
    /** Class names (classification): a label is one of these. */
    classes: z.array(z.string().min(1).max(128)).min(2).max(1000).optional(),
    /** The label column's name (documentation and imports). */
    label: z.string().min(1).max(128),
    /** The model this task trains. */
    model: ModelNameSchema,
    createdAt: z.iso.datetime(),
  })
  .refine((t) => t.kind === 'regression' || (t.classes?.length ?? 0) >= 2, {
    message: 'a classification task needs at least two classes',
  });
export type Task = z.infer<typeof TaskSchema>;

/** One example in the pool. `label` is null until ground truth is known (captured, no feedback yet). */
export const SampleSchema = z.object({
  /** Unique within the pool; device samples use `<deviceId>:<requestId>`. */
  id: z.string().min(1).max(200),
  /** Where it came from: a device id, or `import:<file>`. */
  source: z.string().min(1).max(200),
  features: z.array(z.number()),
  /** A class name (classification) or a number (regression). */
  label: z.union([z.string(), z.number()]).nullable(),
  /** Capture time, ms since epoch. */
  ts: z.number().int().nonnegative(),
});
export type Sample = z.infer<typeof SampleSchema>;

export const REJECTION_REASONS = [
  'malformed',
  'unknown_task',
  'wrong_feature_count',
  'non_finite_feature',
  'label_not_in_classes',
  'non_finite_label',
  'oversize_batch',
  'duplicate',
  /** Not refused by the fleet: dropped by a device whose outbox was full, as it reported. */
  'dropped_on_device',
] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

export type SampleVerdict = { ok: true } | { ok: false; reason: RejectionReason; detail: string };

/** Whether a sample fits its task. Same rules on the device (before sending) and on the fleet (on receipt). */
export function validateSample(task: Task, sample: Sample): SampleVerdict {
  if (sample.features.length !== task.features.length) {
    return {
      ok: false,
      reason: 'wrong_feature_count',
      detail: `expected ${task.features.length} features, got ${sample.features.length}`,
    };
  }
  for (let i = 0; i < sample.features.length; i++) {
    if (!Number.isFinite(sample.features[i])) {
      return {
        ok: false,
        reason: 'non_finite_feature',
        detail: `feature ${task.features[i]} is ${sample.features[i]}`,
      };
    }
  }
  if (sample.label === null) return { ok: true };
  if (task.kind === 'classification') {
    if (typeof sample.label !== 'string' || !task.classes!.includes(sample.label)) {
      return {
        ok: false,
        reason: 'label_not_in_classes',
        detail: `label ${JSON.stringify(sample.label)} is not one of ${task.classes!.join(', ')}`,
      };
    }
  } else if (typeof sample.label !== 'number' || !Number.isFinite(sample.label)) {
    return {
      ok: false,
      reason: 'non_finite_label',
      detail: `regression label must be a finite number, got ${JSON.stringify(sample.label)}`,
    };
  }
  return { ok: true };
}
