/**
 * Deterministic train/holdout split: a record is held out when the first 4 bytes of sha256(id), read as
 * a big-endian uint32 and divided by 2^32, fall below the holdout fraction. It depends only on the id, so
 * it is stable across runs, machines, seeds and row order, and a record never moves between sides as data
 * is appended.
 */
import { createHash } from 'node:crypto';

export interface Split {
  /** Row indices, ascending. */
  train: Int32Array;
  holdout: Int32Array;
}

/** The point in [0, 1) that decides which side `id` falls on. */
export function idUnit(id: string): number {
  return createHash('sha256').update(id, 'utf8').digest().readUInt32BE(0) / 2 ** 32;
}

export function isHoldout(id: string, holdoutFraction: number): boolean {
  return idUnit(id) < holdoutFraction;
}

export function splitByIds(ids: readonly string[], holdoutFraction: number): Split {
  const train: number[] = [];
  const holdout: number[] = [];
  ids.forEach((id, i) => {
    (isHoldout(id, holdoutFraction) ? holdout : train).push(i);
  });
  return { train: Int32Array.from(train), holdout: Int32Array.from(holdout) };
}
