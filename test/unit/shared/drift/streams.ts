/**
 * Seeded value streams for the concept-drift detector tests, replayed from the specs in
 * test/fixtures/drift/{page_hinkley,adwin}.json exactly as make_fixtures.py generates them (mulberry32, and
 * only operations that round the same way in Python and JavaScript). Each fixture records its stream's
 * length, plain left-to-right sum and last value; `replay` refuses a stream that does not match them, so a
 * fixture's indices are never compared on a different stream.
 */
import { mulberry32 } from '../../../../shared/onnx/mlp.js';

export interface Segment {
  kind: 'normal' | 'bernoulli';
  n: number;
  /** The level (mean, or probability of a 1) goes linearly from `from` to `to` over the segment. */
  from: number;
  to: number;
  /** Standard deviation of the Irwin–Hall(4) noise ('normal' only). */
  sd?: number;
}

export interface StreamSpec {
  seed: number;
  segments: Segment[];
}

export interface StreamCheck {
  length: number;
  sum: number;
  last: number;
}

export function makeStream(spec: StreamSpec): number[] {
  const rand = mulberry32(spec.seed);
  const values: number[] = [];
  for (const { kind, n, from, to, sd = 0 } of spec.segments) {
    for (let j = 0; j < n; j++) {
      const level = from + (to - from) * (j / n);
      if (kind === 'normal')
        values.push(level + sd * ((rand() + rand() + rand() + rand() - 2) * Math.sqrt(3)));
      else values.push(rand() < level ? 1 : 0);
    }
  }
  return values;
}

/** The fixture's stream, checked against its recorded length, sum and last value. */
export function replay(spec: StreamSpec, check: StreamCheck): number[] {
  const values = makeStream(spec);
  let sum = 0;
  for (const v of values) sum += v;
  const found = { length: values.length, sum, last: values[values.length - 1]! };
  if (found.length !== check.length || found.sum !== check.sum || found.last !== check.last)
    throw new Error(
      `stream ${JSON.stringify(spec)} replays as ${JSON.stringify(found)}, expected ${JSON.stringify(check)}`,
    );
  return values;
}
