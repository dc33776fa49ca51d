/**
 * The one place domain errors become HTTP responses: `{ error: { code, message } }` with a status chosen by
 * error family. Anything unexpected is a 500 with a generic message (details go to the log, not the client).
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  AuthenticationError,
  ConflictError,
  EdgefleetError,
  NotFoundError,
  PermissionError,
  TooLargeError,
  UnprocessableError,
  ValidationError,
} from '../../shared/errors.js';

type Status = 400 | 401 | 403 | 404 | 409 | 413 | 422 | 500;

export function statusOf(err: EdgefleetError): Status {
  if (err instanceof ValidationError) return 400;
  if (err instanceof AuthenticationError) return 401;
  if (err instanceof PermissionError) return 403;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof TooLargeError) return 413;
  if (err instanceof UnprocessableError) return 422;
  return 400;
}

export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof EdgefleetError) {
      return c.json({ error: { code: err.code, message: err.message } }, statusOf(err));
    }
    if (err instanceof z.ZodError) {
      return c.json(
        { error: { code: 'invalid_input', message: z.prettifyError(err).replaceAll('\n', '; ') } },
        400,
      );
    }
    if (err instanceof HTTPException) {
      return c.json({ error: { code: 'http_error', message: err.message } }, err.status);
    }
    log.error({ err, path: c.req.path }, 'unhandled error in HTTP handler');
    return c.json({ error: { code: 'internal', message: 'internal error' } }, 500);
  };
}

/** Parse a JSON body with a zod schema; malformed JSON and schema failures are 400s that say what is wrong. */
export async function jsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let raw: unknown;
  try {
    const text = await c.req.text();
    raw = text.length === 0 ? {} : JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`request body is not valid JSON: ${(err as Error).message}`, {
      code: 'invalid_json',
    });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ValidationError(z.prettifyError(parsed.error).replaceAll('\n', '; '));
  return parsed.data;
}
