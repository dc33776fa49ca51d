/**
 * The MQTT wire protocol: every message is a member of one tagged union, in a versioned envelope
 * `{ v, type, id, ts, ... }`, parsed by `parseMessage`. Payloads are UTF-8 JSON.
 * Adding a message: add its schema to `MessageSchema`; the exhaustive switches on `type` then tell you
 * every place that must handle it.
 */
import { z } from 'zod';
import { type Message, MessageSchema, parseSamplesFast } from './schemas.js';

export * from './schemas.js';

export type ParseResult = { ok: true; message: Message } | { ok: false; reason: string };

/** Parse any payload (Buffer, string or value) into a protocol message, or say precisely why not. */
export function parseMessage(payload: unknown, maxBytes = 1024 * 1024): ParseResult {
  let value: unknown = payload;
  if (Buffer.isBuffer(payload) || typeof payload === 'string') {
    const size = Buffer.isBuffer(payload) ? payload.length : Buffer.byteLength(payload);
    if (size > maxBytes) return { ok: false, reason: `message is ${size} bytes, the limit is ${maxBytes}` };
    try {
      value = JSON.parse(payload.toString());
    } catch (err) {
      return { ok: false, reason: `not JSON: ${(err as Error).message}` };
    }
    // Only values JSON.parse made (plain objects and arrays) take the hand-checked path.
    if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'samples') {
      const message = parseSamplesFast(value as Record<string, unknown>);
      if (message) return { ok: true, message };
    }
  }
  const parsed = MessageSchema.safeParse(value);
  if (!parsed.success) return { ok: false, reason: z.prettifyError(parsed.error).replaceAll('\n', '; ') };
  return { ok: true, message: parsed.data };
}

/** Serialize a message for publishing. */
export function encodeMessage(message: Message): Buffer {
  return Buffer.from(JSON.stringify(message));
}

export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(value)}`);
}
