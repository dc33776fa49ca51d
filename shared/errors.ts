/**
 * The error families every part of edgefleet speaks. Each error has a stable machine `code` (reported to
 * the fleet, returned in HTTP bodies), a human message naming what was expected and what was found, and a
 * `retryable` flag: transient failures (network, broker, busy) may be retried; fatal ones (bad signature,
 * wrong shape) must not be.
 */

export interface ErrorOptions {
  cause?: unknown;
  retryable?: boolean;
}

export class EdgefleetError extends Error {
  override readonly name: string = 'EdgefleetError';
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Input that does not match a schema (HTTP 400, rejected MQTT message, bad CLI argument). */
export class ValidationError extends EdgefleetError {
  override readonly name = 'ValidationError';
  constructor(message: string, options: ErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'invalid_input', message, options);
  }
}

/** Something that was asked for does not exist (HTTP 404). */
export class NotFoundError extends EdgefleetError {
  override readonly name = 'NotFoundError';
  constructor(what: string, id: string) {
    super('not_found', `${what} '${id}' not found`);
  }
}

/** The request is too large (HTTP 413). */
export class TooLargeError extends EdgefleetError {
  override readonly name = 'TooLargeError';
  constructor(message: string, code = 'too_large') {
    super(code, message);
  }
}

/** Well-formed input that cannot be processed as asked (HTTP 422). */
export class UnprocessableError extends EdgefleetError {
  override readonly name = 'UnprocessableError';
  constructor(message: string, code: string) {
    super(code, message);
  }
}

/** The request conflicts with the current state (HTTP 409). */
export class ConflictError extends EdgefleetError {
  override readonly name = 'ConflictError';
  constructor(message: string, code = 'conflict') {
    super(code, message);
  }
}

/** Missing or wrong credentials (HTTP 401). */
export class AuthenticationError extends EdgefleetError {
  override readonly name = 'AuthenticationError';
  constructor(message = 'missing or invalid credentials', code = 'unauthenticated') {
    super(code, message);
  }
}

/** Valid credentials without the needed role (HTTP 403). */
export class PermissionError extends EdgefleetError {
  override readonly name = 'PermissionError';
  constructor(message: string) {
    super('forbidden', message);
  }
}

/** The statuses the error map answers with. */
export type HttpErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 422 | 500;

/**
 * Family → HTTP status, as data: the fleet's API and the agent's local API both answer from this table.
 * Subclasses inherit their family's status (ManifestError is not listed: it is no client error at an HTTP edge).
 */
export const HTTP_STATUS_OF_FAMILY: readonly (readonly [
  abstract new (...args: never[]) => EdgefleetError,
  HttpErrorStatus,
])[] = [
  [ValidationError, 400],
  [AuthenticationError, 401],
  [PermissionError, 403],
  [NotFoundError, 404],
  [ConflictError, 409],
  [TooLargeError, 413],
  [UnprocessableError, 422],
];

/**
 * The HTTP status of a domain error: its family's, or 500 for an EdgefleetError of no client-error family
 * (a download, a self-test, a training job that failed is the server's fault, not the caller's).
 */
export function httpStatusOf(err: EdgefleetError): HttpErrorStatus {
  for (const [family, status] of HTTP_STATUS_OF_FAMILY) if (err instanceof family) return status;
  return 500;
}

/** The generic message a 500 answers with: internals (paths, stack, library text) go to the log only. */
export const INTERNAL_MESSAGE = 'internal error';

export interface HttpErrorAnswer {
  status: HttpErrorStatus;
  body: { error: { code: string; message: string } };
  /** The server's fault: the edge logs the error, since its body says nothing of it. */
  serverFault: boolean;
}

/**
 * What an HTTP edge answers for a thrown value. A client-error family answers with its code and message; a
 * domain error of no such family answers 500 with its code (stable, useful to the caller) and the generic
 * message; anything else is 500 `internal`, again with the generic message.
 */
export function httpErrorOf(err: unknown): HttpErrorAnswer {
  if (err instanceof EdgefleetError) {
    const status = httpStatusOf(err);
    const message = status === 500 ? INTERNAL_MESSAGE : err.message;
    return { status, body: { error: { code: err.code, message } }, serverFault: status === 500 };
  }
  return { status: 500, body: { error: { code: 'internal', message: INTERNAL_MESSAGE } }, serverFault: true };
}

/** Render any thrown value as one line, for logs and reports. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
