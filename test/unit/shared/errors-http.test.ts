/**
 * The one error → HTTP status map both edges answer from (the fleet's API and the agent's local API): every
 * family keeps its status, subclasses inherit it, and whatever is no client error is a 500 that tells nothing.
 */
import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConflictError,
  EdgefleetError,
  HTTP_STATUS_OF_FAMILY,
  httpErrorOf,
  httpStatusOf,
  INTERNAL_MESSAGE,
  NotFoundError,
  PermissionError,
  TooLargeError,
  UnprocessableError,
  ValidationError,
} from '../../../shared/errors.js';
import { ManifestError } from '../../../shared/manifest.js';

class NotFoundHere extends NotFoundError {}

describe('httpStatusOf: one status per error family', () => {
  const families = [
    { family: 'ValidationError', err: new ValidationError('bad', { code: 'invalid_json' }), status: 400 },
    { family: 'AuthenticationError', err: new AuthenticationError(), status: 401 },
    { family: 'PermissionError', err: new PermissionError('needs admin'), status: 403 },
    { family: 'NotFoundError', err: new NotFoundError('model', 'clf'), status: 404 },
    { family: 'ConflictError', err: new ConflictError('already rolling out'), status: 409 },
    { family: 'TooLargeError', err: new TooLargeError('body over 1 MiB'), status: 413 },
    {
      family: 'UnprocessableError',
      err: new UnprocessableError('no golden', 'golden_unavailable'),
      status: 422,
    },
  ];

  it.each(families)('$family → $status, answered with its own code and message', ({ err, status }) => {
    expect(httpStatusOf(err)).toBe(status);
    expect(httpErrorOf(err)).toEqual({
      status,
      body: { error: { code: err.code, message: err.message } },
      serverFault: false,
    });
  });

  it('the table above covers every family the map knows, and each family once', () => {
    const mapped = HTTP_STATUS_OF_FAMILY.map(([family]) => family.name).sort();
    expect(mapped).toEqual(families.map((f) => f.family).sort());
  });

  it('a subclass answers with its family status', () => {
    expect(httpStatusOf(new NotFoundHere('device', 'dev-1'))).toBe(404);
  });

  it.each([
    {
      what: 'a plain EdgefleetError',
      err: new EdgefleetError('download_failed', 'GET /a/b.onnx: ECONNRESET'),
    },
    { what: 'a ManifestError', err: new ManifestError('signature_invalid', 'key k1 did not sign this') },
    {
      what: 'a retryable domain error',
      err: new EdgefleetError('busy', 'queue at /var/x full', { retryable: true }),
    },
  ])('$what is the server fault: 500 with its code, the generic message', ({ err }) => {
    const answer = httpErrorOf(err);
    expect(answer.status).toBe(500);
    expect(answer.serverFault).toBe(true);
    expect(answer.body.error.code).toBe(err.code);
    expect(answer.body.error.message).toBe(INTERNAL_MESSAGE);
    expect(JSON.stringify(answer.body)).not.toContain(err.message);
  });

  it.each([
    { what: 'a plain Error', err: new Error('ENOENT: /var/lib/edgefleet/models/a/model.onnx') },
    { what: 'a TypeError', err: new TypeError("Cannot read properties of undefined (reading 'dims')") },
    { what: 'a thrown string', err: 'secret token abc' },
  ])('$what is 500 internal, with nothing of it in the body', ({ err }) => {
    const answer = httpErrorOf(err);
    expect(answer).toEqual({
      status: 500,
      body: { error: { code: 'internal', message: INTERNAL_MESSAGE } },
      serverFault: true,
    });
  });
});
