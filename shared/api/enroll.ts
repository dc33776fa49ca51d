/**
 * The enrollment exchange between a new device and the fleet (`POST /api/v1/enroll`), shared by the
 * agent (client) and the fleet server (handler).
 */
import { z } from 'zod';
import { FirmwareProfileSchema } from '../firmware-profile.js';
import { DeviceIdSchema } from '../protocol/topics.js';

/** Device tags as a device may request them: a handful of short `key=value` pairs. */
export const DeviceTagsSchema = z
  .record(z.string().regex(/^[\w.-]{1,64}$/, 'tag keys: letters, digits, _ . -'), z.string().max(256))
  .refine((tags) => Object.keys(tags).length <= 32, 'at most 32 tags');

export const EnrollRequestSchema = z.object({
  token: z.string().min(8).max(256),
  /** Requested firmware profile; overrides the token's profile when given. */
  profile: z.string().max(64).optional(),
  /** Tags the device asks for (set at install time); the token's tags win where both name a key. */
  tags: DeviceTagsSchema.optional(),
  /** Facts the device reports about itself. */
  facts: z
    .object({
      hostname: z.string().max(255).optional(),
      arch: z.string().max(32).optional(),
      platform: z.string().max(32).optional(),
      agentVersion: z.string().max(64).optional(),
    })
    .default({}),
});
export type EnrollRequest = z.infer<typeof EnrollRequestSchema>;

export const EnrollResponseSchema = z.object({
  deviceId: DeviceIdSchema,
  mqtt: z.object({
    url: z.string().min(1),
    username: z.string().min(1),
    password: z.string().min(16),
  }),
  /** Keys the device pins: every manifest it installs must carry a valid signature by one of them. */
  trustedKeys: z.array(z.object({ keyid: z.string(), publicKey: z.string() })).min(1),
  /** Base URL of the fleet HTTP API (artifact downloads). */
  serverUrl: z.string().min(1),
  profile: FirmwareProfileSchema,
  tags: z.record(z.string(), z.string()),
});
export type EnrollResponse = z.infer<typeof EnrollResponseSchema>;
