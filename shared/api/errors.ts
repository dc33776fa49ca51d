/**
 * The error body every refused `/api/v1` call answers with (4xx and 5xx): `{ error: { code, message } }`.
 * `code` is stable and machine-readable (`not_found`, `invalid_spec`…); `message` says what was expected
 * and what was found.
 */
import { z } from 'zod';

export const ErrorBodySchema = z.object({
  error: z.object({ code: z.string().min(1), message: z.string() }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;
