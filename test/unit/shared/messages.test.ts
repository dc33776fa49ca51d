import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertNever,
  encodeMessage,
  type InstallCommand,
  type Message,
  PROTOCOL_VERSION,
  parseMessage,
  parseSamplesFast,
  SamplesMessageSchema,
  type StatusMessage,
  type TelemetryMessage,
  UPDATE_STATES,
  type UpdateMessage,
} from '../../../shared/protocol/messages.js';

const install: InstallCommand = {
  v: 1,
  type: 'install',
  id: 'cmd-1',
  ts: 1_700_000_000_000,
  rolloutId: 'ro-1',
  manifest: '{"schema":"edgefleet.manifest/v1"}',
  artifactUrl: 'http://127.0.0.1:8080/api/v1/artifacts/abc',
  mode: 'activate',
  shadowPercent: 100,
};

const status: StatusMessage = {
  v: 1,
  type: 'status',
  id: 'st-1',
  ts: 1_700_000_000_001,
  online: true,
  agentVersion: '0.1.0',
  models: [{ name: 'demo', version: 2, executionProvider: 'cpu' }],
};

const update: UpdateMessage = {
  v: 1,
  type: 'update',
  id: 'up-1',
  ts: 1_700_000_000_002,
  commandId: 'cmd-1',
  rolloutId: 'ro-1',
  model: { name: 'demo', version: 3 },
  state: 'failed',
  reason: { code: 'signature_invalid', message: 'signature does not match' },
  executionProvider: null,
  serving: { name: 'demo', version: 2 },
};

const telemetry: TelemetryMessage = {
  v: 1,
  type: 'telemetry',
  id: 'tm-1',
  ts: 1_700_000_000_003,
  windowMs: 10_000,
  models: [
    {
      name: 'demo',
      version: 2,
      executionProvider: 'cpu',
      requests: 10,
      errors: 0,
      latencyMs: { p50: 1, p95: 2, p99: 3 },
    },
  ],
  process: { rssBytes: 1e8, heapUsedBytes: 1e7, cpuPercent: 3.5, uptimeS: 12 },
  device: { loadAvg1: 0.2, freeMemBytes: 1e9, totalMemBytes: 4e9 },
};

function reasonOf(payload: unknown, maxBytes?: number): string {
  const result = parseMessage(payload, maxBytes);
  if (result.ok) throw new Error(`expected a rejection, parsed ${JSON.stringify(result.message)}`);
  return result.reason;
}

describe('parseMessage', () => {
  it.each([
    ['install', install],
    ['status', status],
    ['update', update],
    ['telemetry', telemetry],
  ] as const)('parses a valid %s message from a Buffer, a string or a value', (_type, message) => {
    for (const payload of [encodeMessage(message), JSON.stringify(message), structuredClone(message)]) {
      expect(parseMessage(payload)).toEqual({ ok: true, message });
    }
  });

  it('fills defaults for optional fields', () => {
    const { models: _m, agentVersion: _a, ...bareStatus } = status;
    expect(parseMessage(bareStatus)).toEqual({ ok: true, message: { ...bareStatus, models: [] } });
    const { reason: _r, executionProvider: _e, serving: _s, ...bareUpdate } = update;
    expect(parseMessage({ ...bareUpdate, state: 'received' })).toEqual({
      ok: true,
      message: { ...bareUpdate, state: 'received', reason: null, executionProvider: null, serving: null },
    });
  });

  it('rejects another protocol version', () => {
    expect(reasonOf({ ...status, v: PROTOCOL_VERSION + 1 })).toMatch(/\bv\b/);
  });

  it('rejects an unknown message type', () => {
    expect(reasonOf({ ...status, type: 'reboot' })).toMatch(/type/);
  });

  it('rejects bad JSON, saying so', () => {
    expect(reasonOf('{"v":1,')).toMatch(/^not JSON: /);
    expect(reasonOf(Buffer.from([0xff, 0xfe]))).toMatch(/^not JSON: /);
  });

  it('rejects an oversize payload by its byte length before parsing', () => {
    const text = JSON.stringify({ ...status, agentVersion: 'ü'.repeat(10) });
    const bytes = Buffer.byteLength(text);
    expect(reasonOf(text, bytes - 1)).toBe(`message is ${bytes} bytes, the limit is ${bytes - 1}`);
    expect(parseMessage(text, bytes).ok).toBe(true);
    expect(reasonOf(`{${' '.repeat(64)}`, 32)).toMatch(/^message is 65 bytes/);
  });

  it.each([
    ['an install without a URL', { ...install, artifactUrl: 'not a url' }, 'artifactUrl'],
    ['an update in an unknown state', { ...update, state: 'exploded' }, 'state'],
    ['a bad model name', { ...update, model: { name: 'Demo', version: 1 } }, 'model'],
    ['a negative timestamp', { ...status, ts: -1 }, 'ts'],
    ['telemetry with a negative counter', { ...telemetry, windowMs: 0 }, 'windowMs'],
    ['a missing id', { ...status, id: undefined }, 'id'],
  ])('rejects %s, naming the field in one line', (_what, value, field) => {
    const reason = reasonOf(value);
    expect(reason).toContain(field);
    expect(reason).not.toContain('\n');
  });

  it('rejects non-objects', () => {
    for (const value of [null, 42, 'status', [], '[]', 'null']) expect(parseMessage(value).ok).toBe(false);
  });
});

describe('encodeMessage / parseMessage round trip', () => {
  const modelName = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,30}$/);
  const id = fc.string({ minLength: 1, maxLength: 64 });
  const ts = fc.nat();
  const count = fc.nat();
  const measure = fc.double({ min: 0, max: 1e12, noNaN: true }).map((x) => x + 0); // + 0 turns -0 into 0
  const ref = fc.record({ name: modelName, version: fc.integer({ min: 1, max: 1e9 }) });
  const provider = fc.constantFrom('cpu', 'cuda', 'tensorrt');
  const reason = fc.record({
    code: fc.string({ minLength: 1, maxLength: 64 }),
    message: fc.string({ maxLength: 200 }),
  });

  const arbitraries: fc.Arbitrary<Message>[] = [
    fc.record({
      v: fc.constant(1 as const),
      type: fc.constant('install' as const),
      id,
      ts,
      rolloutId: id,
      manifest: fc.string({ minLength: 2 }),
      artifactUrl: fc.webUrl(),
      mode: fc.constantFrom('activate' as const, 'shadow' as const),
      shadowPercent: fc.double({ min: 0, max: 100, noNaN: true }).map((x) => x + 0),
    }),
    fc.record({
      v: fc.constant(1 as const),
      type: fc.constant('activate' as const),
      id,
      ts,
      rolloutId: id,
      model: ref,
    }),
    fc.record({
      v: fc.constant(1 as const),
      type: fc.constant('rollback' as const),
      id,
      ts,
      rolloutId: id,
      model: ref,
      reason,
    }),
    fc.record({
      v: fc.constant(1 as const),
      type: fc.constant('status' as const),
      id,
      ts,
      online: fc.boolean(),
      agentVersion: fc.string({ maxLength: 64 }),
      models: fc.array(
        fc.record({ name: modelName, version: fc.integer({ min: 1 }), executionProvider: provider }),
        {
          maxLength: 4,
        },
      ),
    }),
    fc.record({
      v: fc.constant(1 as const),
      type: fc.constant('update' as const),
      id,
      ts,
      commandId: id,
      rolloutId: id,
      model: ref,
      state: fc.constantFrom(...UPDATE_STATES),
      reason: fc.option(reason, { nil: null }),
      executionProvider: fc.option(provider, { nil: null }),
      serving: fc.option(ref, { nil: null }),
    }),
    fc.record({
      v: fc.constant(1 as const),
      type: fc.constant('telemetry' as const),
      id,
      ts,
      windowMs: fc.integer({ min: 1 }),
      models: fc.array(
        fc.record({
          name: modelName,
          version: fc.integer({ min: 1 }),
          executionProvider: provider,
          requests: count,
          errors: count,
          latencyMs: fc.record({ p50: measure, p95: measure, p99: measure }),
        }),
        { maxLength: 3 },
      ),
      process: fc.record({
        rssBytes: measure,
        heapUsedBytes: measure,
        cpuPercent: measure,
        uptimeS: measure,
      }),
      device: fc.record({ loadAvg1: measure, freeMemBytes: measure, totalMemBytes: measure }),
    }),
  ];

  it('property: parse(encode(m)) gives m back for every message type', () => {
    fc.assert(
      fc.property(fc.oneof(...arbitraries), (message) => {
        expect(parseMessage(encodeMessage(message))).toEqual({ ok: true, message });
      }),
    );
  });
});

describe('samples messages: the hand-checked fast path agrees with the schema', () => {
  // Values near every limit of SamplesMessageSchema and CapturedSampleSchema, on both sides of it, plus
  // wrong types and unknown keys; JSON text is what the fast path sees in production.
  const text = (min: number, max: number) => fc.string({ minLength: min, maxLength: max });
  const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 8 });
  const number = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer());
  // Mostly valid, so that whole batches often are; each field now and then on the wrong side of a limit.
  const often = <T, U>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<U>) =>
    fc.oneof({ weight: 30, arbitrary: valid }, { weight: 1, arbitrary: invalid });
  const numbers = fc.oneof(
    { weight: 60, arbitrary: fc.array(number, { maxLength: 8 }) },
    { weight: 1, arbitrary: fc.array(fc.oneof(number, fc.string(), fc.constant(null)), { maxLength: 4 }) },
    {
      weight: 1,
      arbitrary: fc.oneof(fc.string(), number, fc.constant(null), fc.dictionary(text(1, 3), number)),
    },
  );
  const timestamp = often(fc.nat(), fc.constantFrom(-1, 0.5, 2 ** 53, 2 ** 53 - 1, 1e300, '1', null));
  const sample = fc.record(
    {
      id: often(fc.oneof(text(1, 12), fc.constant('i'.repeat(160))), fc.constantFrom('i'.repeat(161), '', 7)),
      features: numbers,
      output: numbers,
      label: often(
        fc.oneof(fc.constant(null), text(0, 8), fc.constant('l'.repeat(128)), number),
        fc.constantFrom('l'.repeat(129), true),
      ),
      ts: timestamp,
      extra: fc.anything(),
    },
    { requiredKeys: ['features', 'output', 'ts'] },
  );
  const message = fc.record(
    {
      v: often(fc.constant(1), fc.constant(2)),
      type: fc.constant('samples'),
      id: often(text(1, 64), fc.constantFrom('', 'i'.repeat(65))),
      ts: timestamp,
      model: fc.record({
        name: often(fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,8}$/), fc.constant('Bad')),
        version: often(fc.integer({ min: 1, max: 1e6 }), fc.constant(0)),
      }),
      samples: often(
        fc.array(sample, { minLength: 1, maxLength: 5 }),
        fc.constantFrom([], null, 'x', [null], [[]]),
      ),
      dropped: maybe(often(fc.nat(), fc.constant(-1))),
      note: maybe(fc.string()),
    },
    { requiredKeys: ['v', 'type', 'id', 'ts', 'model', 'samples'] },
  );

  it('property: accepts exactly what the schema accepts, returning the same message key for key', () => {
    let accepted = 0;
    fc.assert(
      fc.property(message, (m) => {
        const value = JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
        const fast = parseSamplesFast(value);
        const schema = SamplesMessageSchema.safeParse(value);
        expect(fast !== undefined).toBe(schema.success);
        if (fast) {
          accepted++;
          expect(fast).toStrictEqual(schema.data);
          expect(JSON.stringify(fast)).toBe(JSON.stringify(schema.data));
        }
        // And what parseMessage makes of the text is what the schema alone makes of the value.
        expect(parseMessage(JSON.stringify(m), Number.POSITIVE_INFINITY)).toEqual(parseMessage(value));
      }),
      { numRuns: 500 },
    );
    // A property that never saw an accepted message would prove little. About a quarter are accepted
    // (mean 120 of 500, sd ≈ 10 over runs); 60 is six deviations below, so the bound never flakes (100 did).
    expect(accepted).toBeGreaterThan(60);
  });

  const valid = {
    v: 1,
    type: 'samples',
    id: 'b1',
    ts: 1,
    model: { name: 'm', version: 1 },
    samples: [
      { id: 's1', features: [1, 2], output: [0.5], label: 'ok', ts: 2 },
      { id: 's2', features: [3, 4], output: [0.5], label: null, ts: 3 },
    ],
  };
  const many = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ id: `s${i}`, features: [], output: [], label: null, ts: 0 }));
  it.each([
    ...(
      [
        ['id', 'i'.repeat(160)],
        ['id', 'i'.repeat(161)],
        ['id', ''],
        ['id', 7],
        ['id', undefined],
        ['features', 'x'],
        ['features', [1, '2']],
        ['features', [1, null]],
        ['features', new Array(65_536).fill(0.5)],
        ['features', new Array(65_537).fill(0.5)],
        ['output', undefined],
        ['output', {}],
        ['label', 'l'.repeat(128)],
        ['label', 'l'.repeat(129)],
        ['label', ''],
        ['label', -2.5],
        ['label', true],
        ['label', undefined],
        ['ts', 0],
        ['ts', 2 ** 53 - 1],
        ['ts', 2 ** 53],
        ['ts', -1],
        ['ts', 0.5],
        ['ts', '1'],
        ['extra', { any: 'thing' }],
      ] as [string, unknown][]
    ).map(
      ([key, value]) =>
        [
          `sample ${key} = ${JSON.stringify(value)?.slice(0, 20)}`,
          { samples: [valid.samples[0], { ...valid.samples[1], [key]: value }] },
        ] as const,
    ),
    ['no samples', { samples: [] }],
    ['100,000 samples', { samples: many(100_000) }],
    ['100,001 samples', { samples: many(100_001) }],
    ['samples not an array', { samples: { 0: valid.samples[0] } }],
    ['a sample that is an array', { samples: [[]] }],
    ['version 2', { v: 2 }],
    ['a bad model name', { model: { name: 'Bad', version: 1 } }],
    ['dropped 3', { dropped: 3 }],
    ['dropped -1', { dropped: -1 }],
    ['an unknown envelope key', { note: 'x' }],
  ] as const)('agrees with the schema at its limits: %s', (_what, edit) => {
    const value = JSON.parse(JSON.stringify({ ...valid, ...edit })) as Record<string, unknown>;
    const fast = parseSamplesFast(value);
    const schema = SamplesMessageSchema.safeParse(value);
    expect(fast !== undefined).toBe(schema.success);
    if (fast) expect(JSON.stringify(fast)).toBe(JSON.stringify(schema.data));
  });

  it('keeps non-finite features for the pool to refuse one by one (1e999 parses to Infinity)', () => {
    const text =
      '{"v":1,"type":"samples","id":"b1","ts":1,"model":{"name":"m","version":1},"samples":[' +
      '{"id":"s1","features":[1e999,-1e999,0.5],"output":[],"label":null,"ts":2,"x":1}]}';
    const parsed = parseMessage(text);
    expect(parsed).toEqual({
      ok: true,
      message: {
        v: 1,
        type: 'samples',
        id: 'b1',
        ts: 1,
        model: { name: 'm', version: 1 },
        samples: [
          {
            id: 's1',
            features: [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5],
            output: [],
            label: null,
            ts: 2,
          },
        ],
        dropped: 0,
      },
    });
    expect(parsed).toEqual(parseMessage(JSON.parse(text)));
  });
});

describe('assertNever', () => {
  it('throws naming the unhandled value', () => {
    expect(() => assertNever('reboot' as never, 'message type')).toThrow('unhandled message type: "reboot"');
  });
});
