/** The `code` of the EdgefleetError a promise rejects with (fails the test when it resolves). */
import type { EdgefleetError } from '../../shared/errors.js';

export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as EdgefleetError).code;
  }
  throw new Error('expected a rejection');
}
