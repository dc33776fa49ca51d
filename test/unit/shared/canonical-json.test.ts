import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalBytes, canonicalize } from '../../../shared/canonical-json.js';

describe('canonicalize', () => {
  it('sorts keys, at every depth, and writes no whitespace', () => {
    expect(canonicalize({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('keeps array order', () => {
    expect(canonicalize([3, 1, 2, 'b', 'a'])).toBe('[3,1,2,"b","a"]');
  });

  it('orders keys by UTF-16 code units, not code points (RFC 8785 §3.2.3 example)', () => {
    // The RFC's sorting example: U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB33
    // by code unit though it is after it by code point.
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // Compare text: Object.keys on a parsed object would list the integer-like key "1" first.
    expect(canonicalize(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('matches the RFC 8785 §3.2.2 example output byte for byte', () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`;
    const expected = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`;
    expect(canonicalize(JSON.parse(input))).toBe(expected);
    expect(canonicalBytes(JSON.parse(input)).equals(Buffer.from(expected, 'utf8'))).toBe(true);
  });

  it.each([
    [0, '0'],
    [-0, '0'],
    [0.1, '0.1'],
    [1e21, '1e+21'],
    [1e20, '100000000000000000000'],
    [1e-7, '1e-7'],
    [-1.5, '-1.5'],
    [5e-324, '5e-324'],
    [Number.MAX_VALUE, '1.7976931348623157e+308'],
    [2 ** 53, '9007199254740992'],
  ])('writes the number %d as %s', (value, text) => {
    expect(canonicalize(value)).toBe(text);
  });

  it('writes strings as JSON.stringify does: lowercase \\u escapes, raw non-ASCII, escaped lone surrogates', () => {
    expect(canonicalize('\u0001\u001f"\\/é')).toBe('"\\u0001\\u001f\\"\\\\/é"');
    expect(canonicalize('\ud800')).toBe('"\\ud800"');
  });

  it('encodes canonical bytes as UTF-8', () => {
    expect([...canonicalBytes({ é: 'ü' })]).toEqual([...Buffer.from('{"é":"ü"}', 'utf8')]);
  });

  it('omits object members whose value is undefined, as JSON does', () => {
    expect(canonicalize({ a: undefined, b: 1 })).toBe('{"b":1}');
  });

  it.each([
    [Number.NaN, '$'],
    [{ a: [1, Number.POSITIVE_INFINITY] }, '$.a[1]'],
    [{ a: { b: Number.NEGATIVE_INFINITY } }, '$.a.b'],
  ])('rejects non-finite numbers and names where: %j', (value, path) => {
    expect(() => canonicalize(value)).toThrow(new TypeError(`canonical JSON: non-finite number at ${path}`));
  });

  it.each([
    ['undefined', undefined],
    ['an undefined array item', [1, undefined]],
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    ['an array hole', [1, , 2]],
    ['a function', { f: () => 1 }],
    ['a bigint', { n: 1n }],
    ['a symbol', [Symbol('x')]],
  ])('rejects %s', (_what, value) => {
    expect(() => canonicalize(value)).toThrow(TypeError);
  });

  it('refuses objects with no single JSON form instead of writing {}', () => {
    expect(() => canonicalize({ when: new Date(0) })).toThrow('cannot encode a Date at $.when');
    expect(() => canonicalize([new Map()])).toThrow('cannot encode a Map at $[0]');
    expect(() => canonicalize({ b: Buffer.from('x') })).toThrow('cannot encode a Buffer at $.b');
    expect(canonicalize(Object.assign(Object.create(null), { a: 1 }))).toBe('{"a":1}');
  });

  it('names the path of what it cannot encode (a hole is undefined, not skipped)', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    expect(() => canonicalize({ a: [1, , 2] })).toThrow('canonical JSON: cannot encode undefined at $.a[1]');
  });

  it('property: the output is valid JSON that parses back to the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalize(value);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('property: stable under key permutation at every depth', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (value, seed) => {
        expect(canonicalize(shuffleKeys(value, seed))).toBe(canonicalize(value));
      }),
    );
  });

  it('property: idempotent (canonical text re-canonicalizes to itself)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const once = canonicalize(value);
        expect(canonicalize(JSON.parse(once))).toBe(once);
      }),
    );
  });
});

/** A deep copy whose object keys are inserted in a seed-dependent order. */
function shuffleKeys(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((item, i) => shuffleKeys(item, seed + i));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  let s = seed >>> 0;
  for (let i = entries.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    const j = s % (i + 1);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    // defineProperty: a key named "__proto__" must stay an own property, as JSON.parse makes it.
    Object.defineProperty(out, k, {
      value: shuffleKeys(v, seed + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
