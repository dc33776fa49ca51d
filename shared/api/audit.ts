/**
 * The audit trail and who is calling, on the wire: audit entries (hash-chained), the chain's verification,
 * the change events of the live stream, and `whoami`. Pure zod.
 */
import { z } from 'zod';
import { ROLES } from './common.js';

// ---- requests -------------------------------------------------------------------------------------

export const AuditQuerySchema = z.object({
  actor: z.string().min(1).max(200).optional(),
  action: z.string().min(1).max(200).optional(),
  target: z.string().min(1).max(400).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
});

// ---- responses ------------------------------------------------------------------------------------

/** One recorded change, as the event stream (`change`) and the overview's recent events carry it. */
export const AuditEventSchema = z.object({
  seq: z.number().int(),
  at: z.string(),
  /** Operator token name, `device:<id>`, or `system:<component>` for automatic actions. */
  actor: z.string(),
  /** `POST /api/v1/rollouts`, or an automatic action such as `rollout.aborted`. */
  action: z.string(),
  target: z.string(),
  /** HTTP status for API calls; null for automatic actions. */
  status: z.number().nullable(),
});
export type AuditEvent = z.infer<typeof AuditEventSchema>;

/** A whole entry of the log. */
export const AuditEntrySchema = AuditEventSchema.extend({
  role: z.string().nullable(),
  /** sha256 of the request body (null without one). */
  digest: z.string().nullable(),
  detail: z.string().nullable(),
  /** The previous entry's hash (64 zeros for the first). */
  prev: z.string(),
  hash: z.string(),
});
export type AuditEntry = z.infer<typeof AuditEntrySchema>;

export const AuditListSchema = z.object({ entries: z.array(AuditEntrySchema) });

export const VerifyResultSchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), entries: z.number(), head: z.string() }),
  z.object({
    ok: z.literal(false),
    entries: z.number(),
    /** The first entry that does not fit, by its key in the log. */
    firstBad: z.object({
      seq: z.number(),
      key: z.string(),
      problem: z.enum(['edited', 'removed', 'reordered']),
      detail: z.string(),
    }),
  }),
]);
export type VerifyResult = z.infer<typeof VerifyResultSchema>;

/** `GET /whoami`: the calling token's name and role. */
export const PrincipalSchema = z.object({ name: z.string(), role: z.enum(ROLES) });
export type Principal = z.infer<typeof PrincipalSchema>;
