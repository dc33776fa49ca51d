/** Single-range `Range` headers against a 100-byte artifact (RFC 9110 §14): what is served, what is 416. */
import { describe, expect, it } from 'vitest';
import { parseRange } from '../../../../fleet-server/api/routes-artifacts.js';

describe('parseRange', () => {
  it.each([
    { header: undefined, range: null },
    { header: 'bytes=0-99', range: { start: 0, end: 99 } },
    { header: 'bytes=10-19', range: { start: 10, end: 19 } },
    { header: 'bytes=99-99', range: { start: 99, end: 99 } },
    { header: 'bytes=90-', range: { start: 90, end: 99 } },
    { header: 'bytes=90-500', range: { start: 90, end: 99 } }, // last-pos beyond the end is clamped
    { header: 'bytes=-10', range: { start: 90, end: 99 } },
    { header: 'bytes=-500', range: { start: 0, end: 99 } },
    { header: 'bytes=100-', range: 'unsatisfiable' },
    { header: 'bytes=-0', range: 'unsatisfiable' },
    { header: 'bytes=20-10', range: 'unsatisfiable' },
    // Not a single byte range this server understands: served whole.
    { header: 'bytes=0-1,5-6', range: null },
    { header: 'items=0-1', range: null },
    { header: 'bytes=-', range: null },
    { header: 'bytes=a-b', range: null },
  ])('$header → $range', ({ header, range }) => {
    expect(parseRange(header, 100)).toEqual(range);
  });
});
