import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertNever,
  encodeMessage,
  type InstallCommand,
  type Message,
  PROTOCOL_VERSION,
  parseMessage,
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

describe('assertNever', () => {
  it('throws naming the unhandled value', () => {
    expect(() => assertNever('reboot' as never, 'message type')).toThrow('unhandled message type: "reboot"');
  });
});
