/** The fleet config schema: documented defaults, resolved paths, and refusal of out-of-range values. */
import { isAbsolute } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reachableHost, resolveConfig } from '../../../fleet-server/config.js';

describe('resolveConfig', () => {
  it('fills the contract defaults and makes directories absolute', () => {
    const config = resolveConfig({});
    expect(config).toMatchObject({
      httpHost: '0.0.0.0',
      httpPort: 8080,
      mqttHost: '0.0.0.0',
      mqttPort: 1883,
      maxModelBytes: 512 * 1024 * 1024,
      manifestValidityDays: 365,
      logLevel: 'info',
    });
    expect(config.publicUrl).toBeUndefined();
    expect(isAbsolute(config.dataDir) && config.dataDir.endsWith('data')).toBe(true);
    expect(config.profilesDir).toMatch(/firmware-profiles$/);
  });

  it.each([{ httpPort: 70_000 }, { mqttPort: -1 }, { maxModelBytes: 0 }, { logLevel: 'loud' }])(
    'refuses %o',
    (input) => {
      expect(() => resolveConfig(input as never)).toThrow();
    },
  );

  it('turns wildcard bind addresses into loopback for URLs', () => {
    expect(reachableHost('0.0.0.0')).toBe('127.0.0.1');
    expect(reachableHost('::')).toBe('127.0.0.1');
    expect(reachableHost('10.0.0.5')).toBe('10.0.0.5');
  });
});
