import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EnrollRequestSchema, EnrollResponseSchema } from '../../../shared/api/enroll.js';

const profile = JSON.parse(
  readFileSync(new URL('../../../firmware-profiles/raspberry-pi-5.json', import.meta.url), 'utf8'),
);

const response = {
  deviceId: 'dev-0a1b2c',
  mqtt: { url: 'mqtt://127.0.0.1:1883', username: 'dev-0a1b2c', password: 'p'.repeat(32) },
  trustedKeys: [{ keyid: 'a'.repeat(64), publicKey: 'AAAA' }],
  serverUrl: 'http://127.0.0.1:8080',
  profile,
  tags: { site: 'berlin' },
};

describe('enrollment exchange', () => {
  it('a request needs only a token; facts default to {}', () => {
    expect(EnrollRequestSchema.parse({ token: 'eft_12345678' })).toEqual({
      token: 'eft_12345678',
      facts: {},
    });
    expect(EnrollRequestSchema.safeParse({ token: 'short' }).success).toBe(false);
    expect(
      EnrollRequestSchema.safeParse({ token: 'eft_12345678', facts: { arch: 'x'.repeat(33) } }).success,
    ).toBe(false);
  });

  it('a response carries a valid device id, credentials, pinned keys and a valid profile', () => {
    expect(EnrollResponseSchema.parse(response).profile.id).toBe('raspberry-pi-5');
    for (const patch of [
      { deviceId: 'DEV/1' },
      { mqtt: { ...response.mqtt, password: 'short' } },
      { trustedKeys: [] },
      { profile: { ...profile, executionProviders: [] } },
    ]) {
      expect(EnrollResponseSchema.safeParse({ ...response, ...patch }).success, JSON.stringify(patch)).toBe(
        false,
      );
    }
  });

  it('a request may ask for a few well-formed tags', () => {
    const request = (tags: unknown) => EnrollRequestSchema.safeParse({ token: 'eft_12345678', tags });
    expect(request({ ring: 'canary', 'room.no': '2' }).success).toBe(true);
    expect(request({ 'bad key': 'x' }).success).toBe(false);
    expect(request({ ring: 'x'.repeat(257) }).success).toBe(false);
    expect(request(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']))).success).toBe(
      false,
    );
  });
});
