import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConflictError,
  describeError,
  EdgefleetError,
  NotFoundError,
  PermissionError,
  TooLargeError,
  UnprocessableError,
  ValidationError,
} from '../../../shared/errors.js';

describe('error families', () => {
  it.each([
    [new ValidationError('bad'), 'ValidationError', 'invalid_input'],
    [new ValidationError('bad', { code: 'invalid_json' }), 'ValidationError', 'invalid_json'],
    [new NotFoundError('device', 'dev-1'), 'NotFoundError', 'not_found'],
    [new TooLargeError('big'), 'TooLargeError', 'too_large'],
    [new UnprocessableError('no golden', 'golden_unavailable'), 'UnprocessableError', 'golden_unavailable'],
    [new ConflictError('busy'), 'ConflictError', 'conflict'],
    [new AuthenticationError(), 'AuthenticationError', 'unauthenticated'],
    [new PermissionError('needs admin'), 'PermissionError', 'forbidden'],
  ])('%s has name %s and code %s, and is an EdgefleetError', (err, name, code) => {
    expect(err).toBeInstanceOf(EdgefleetError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe(name);
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(false);
    expect(err.toJSON()).toEqual({ code, message: err.message });
  });

  it('NotFoundError names what and which', () => {
    expect(new NotFoundError('device', 'dev-1').message).toBe("device 'dev-1' not found");
  });

  it('carries cause and the retryable flag', () => {
    const cause = new Error('ECONNRESET');
    const err = new EdgefleetError('download_failed', 'download interrupted', { cause, retryable: true });
    expect(err.cause).toBe(cause);
    expect(err.retryable).toBe(true);
    expect(new EdgefleetError('x', 'y')).not.toHaveProperty('cause');
  });

  it('describeError renders any thrown value as one line', () => {
    expect(describeError(new ValidationError('bad input'))).toBe('bad input');
    expect(describeError('plain')).toBe('plain');
    expect(describeError(42)).toBe('42');
  });
});
