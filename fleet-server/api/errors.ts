/**
 * The one place domain errors become HTTP responses: `{ error: { code, message } }` with the status of the
 * error's family (`httpErrorOf` in shared/errors.ts, the same map the agent's local API answers from).
 * Anything unexpected, or a domain error of no client-error family, is a 500 with a generic message
 * (details go to the log, not the client).
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  type EdgefleetError,
  type HttpErrorStatus,
  httpErrorOf,
  httpStatusOf,
  ValidationError,
} from '../../shared/errors.js';

/** The status a domain error answers with (the audit trail records it for errors that escaped the handler). */
export function statusOf(err: EdgefleetError): HttpErrorStatus {
  return httpStatusOf(err);
}

export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof z.ZodError) {
      return c.json(
        { error: { code: 'invalid_input', message: z.prettifyError(err).replaceAll('\n', '; ') } },
        400,
      );
    }
    if (err instanceof HTTPException) {
      return c.json({ error: { code: 'http_error', message: err.message } }, err.status);
    }
    const answer = httpErrorOf(err);
    if (answer.serverFault) log.error({ err, path: c.req.path }, 'unhandled error in HTTP handler');
    return c.json(answer.body, answer.status);
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
