/**
 * Canonical JSON in the manner of RFC 8785 (JCS): object keys sorted by UTF-16 code units, no whitespace,
 * numbers in ECMAScript shortest form, strings escaped as JSON.stringify does. Signatures are computed over
 * these bytes, so two parties holding the same value always sign and verify the same bytes.
 * Invariant: rejects what JSON cannot represent faithfully (NaN, Infinity, undefined in arrays, functions).
 */

export function canonicalize(value: unknown): string {
  return write(value, '$');
}

export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

function write(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: non-finite number at ${path}`);
      // ES Number::toString is exactly the RFC 8785 number serialization (and -0 prints as 0).
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        // Array.from visits holes (as undefined, rejected below); map would skip them and emit `[1,,2]`.
        return `[${Array.from(value, (item, i) => write(item, `${path}[${i}]`)).join(',')}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        // Dates, Maps, Buffers… have no single JSON form; refuse rather than sign '{}'.
        throw new TypeError(
          `canonical JSON: cannot encode a ${proto?.constructor?.name ?? 'non-plain object'} at ${path}`,
        );
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort(compareUtf16);
      return `{${keys.map((k) => `${JSON.stringify(k)}:${write(record[k], `${path}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON: cannot encode ${typeof value} at ${path}`);
  }
}

function compareUtf16(a: string, b: string): number {
  // JS string comparison is by UTF-16 code units, which is what RFC 8785 prescribes.
  return a < b ? -1 : a > b ? 1 : 0;
}
