/**
 * Devices and the tokens that enroll them, on the wire: the operator-token and enrollment-token requests
 * and answers, the device list (whole, or a keyset page) and one device. Pure zod. A device as served has
 * no secret and no raw online flag: `status` says online, offline or never seen. Enrollment itself is
 * enroll.ts (shared with the agent).
 */
import { z } from 'zod';
import { ActiveModelSchema, TelemetryMessageSchema } from '../protocol/schemas.js';
import { ROLES } from './common.js';

// ---- requests -------------------------------------------------------------------------------------

/** `POST /tokens` (admin). */
export const CreateTokenRequestSchema = z.object({
  role: z.enum(ROLES),
  name: z.string().max(128).optional(),
});
export type CreateTokenRequest = z.infer<typeof CreateTokenRequestSchema>;

const TagsSchema = z.record(
  z.string().regex(/^[\w.-]{1,64}$/, 'tag keys: letters, digits, _ . -'),
  z.string().max(256),
);

/** `POST /enrollment-tokens` (operator): the tags and profile every device it enrolls gets. */
export const CreateEnrollmentTokenRequestSchema = z.object({
  tags: TagsSchema.default({}),
  profile: z.string().max(64).optional(),
  expiresInSeconds: z
    .number()
    .int()
    .min(1)
    .max(365 * 86_400)
    .default(86_400),
  name: z.string().max(128).optional(),
});
export type CreateEnrollmentTokenRequest = z.input<typeof CreateEnrollmentTokenRequestSchema>;

/** Server-side pagination of the device list (keyset: `after` is the last id of the previous page). */
export const DevicePageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  after: z.string().min(1).max(64).optional(),
  q: z.string().min(1).max(128).optional(),
  tag: z.string().optional(),
  status: z.enum(['online', 'offline']).optional(),
  profile: z.string().min(1).max(64).optional(),
  /** `<name>` (any version) or `<name>@<version>`: devices whose last status lists it. */
  model: z.string().min(1).max(150).optional(),
});

// ---- responses ------------------------------------------------------------------------------------

/** A new operator token: shown once, only its digest is kept. */
export const OperatorTokenSchema = z.object({
  id: z.string(),
  token: z.string(),
  role: z.enum(ROLES),
  name: z.string(),
});
export type OperatorToken = z.infer<typeof OperatorTokenSchema>;

/** A new enrollment token: shown once. */
export const EnrollmentTokenSchema = z.object({
  id: z.string(),
  token: z.string(),
  expiresAt: z.string(),
  tags: z.record(z.string(), z.string()),
  profile: z.string().nullable(),
});
export type EnrollmentToken = z.infer<typeof EnrollmentTokenSchema>;

export const DEVICE_STATUSES = ['online', 'offline', 'never_seen'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

export const DeviceSchema = z.object({
  id: z.string(),
  tags: z.record(z.string(), z.string()),
  profile: z.string(),
  /** What the device reported about itself at enrollment. */
  facts: z.object({
    hostname: z.string().optional(),
    arch: z.string().optional(),
    platform: z.string().optional(),
    agentVersion: z.string().optional(),
  }),
  enrolledAt: z.string(),
  lastSeen: z.string().nullable(),
  agentVersion: z.string().nullable(),
  /** The models its last status listed. */
  models: z.array(ActiveModelSchema),
  /** Its latest telemetry window, as the device sent it. */
  telemetry: TelemetryMessageSchema.nullable(),
  status: z.enum(DEVICE_STATUSES),
});
export type Device = z.infer<typeof DeviceSchema>;

/** `GET /devices`: every match, or — with limit, after or q — one page and the id to continue after. */
export const DeviceListSchema = z.object({
  devices: z.array(DeviceSchema),
  next: z.string().nullable().optional(),
});
export type DeviceList = z.infer<typeof DeviceListSchema>;
