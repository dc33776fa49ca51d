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

/** Render any thrown value as one line, for logs and reports. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
