/**
 * Variant selection, pure: each device gets the first variant its profile accepts (in the profile's order)
 * that the version has; a device none fits is named in the refusal with its profile and what it accepts.
 */
import { describe, expect, it } from 'vitest';
import {
  assignVariants,
  chooseVariant,
  noVariantError,
  noVariantReason,
} from '../../../../fleet-server/rollouts/variants.js';

const PROFILES: Record<string, string[]> = {
  gpu: ['fp16', 'default', 'fp32'],
  cpu: ['default', 'fp32'],
  npu: ['int8'],
};
const acceptsOf = (profile: string) => PROFILES[profile];

describe('chooseVariant', () => {
  it.each([
    [['default', 'fp16'], ['fp16', 'default', 'fp32'], 'fp16'],
    [['fp16', 'default'], ['default', 'fp32'], 'default'],
    [['fp32'], ['fp16', 'default', 'fp32'], 'fp32'],
    [['fp32', 'fp16'], ['fp16', 'default', 'fp32'], 'fp16'],
    [['fp16'], ['default', 'fp32'], null],
    [['default'], ['int8'], null],
  ])(
    'offered %j, accepts %j → %s (the profile order decides, not the version order)',
    (offered, accepts, want) => {
      expect(chooseVariant(offered, accepts)).toBe(want);
    },
  );
});

describe('assignVariants', () => {
  it('gives each device the variant its profile prefers, and lists the devices none fits', () => {
    const targets = new Map([
      ['dev-c', 'cpu'],
      ['dev-a', 'gpu'],
      ['dev-b', 'npu'],
      ['dev-d', 'retired'], // a profile the fleet no longer knows: `default` only
    ]);
    const { variants, unfit } = assignVariants(targets, ['default', 'fp16'], acceptsOf);
    expect(Object.fromEntries(variants)).toEqual({ 'dev-a': 'fp16', 'dev-c': 'default', 'dev-d': 'default' });
    expect(unfit).toEqual([{ deviceId: 'dev-b', profile: 'npu' }]);

    const fp16Only = assignVariants(targets, ['fp16'], acceptsOf);
    expect(Object.fromEntries(fp16Only.variants)).toEqual({ 'dev-a': 'fp16' });
    expect(fp16Only.unfit.map((d) => d.deviceId)).toEqual(['dev-b', 'dev-c', 'dev-d']);
  });
});

describe('noVariantError', () => {
  it('is a 409 naming the devices, their profiles, what those accept and what the version offers', () => {
    const err = noVariantError(
      { name: 'clf', version: 2 },
      ['fp16'],
      [
        { deviceId: 'dev-b', profile: 'cpu' },
        { deviceId: 'dev-c', profile: 'retired' },
      ],
      acceptsOf,
    );
    expect(err.code).toBe('no_variant_for_devices');
    expect(err.name).toBe('ConflictError');
    expect(err.message).toBe(
      'clf@2 has no variant for 2 targeted device(s): dev-b (cpu), dev-c (retired). The version offers fp16; ' +
        'cpu accepts default, fp32; retired accepts default (profile unknown to the fleet). ' +
        'Add a variant they accept to the version, or leave them out of the targets.',
    );
  });

  it('names the first 20 devices and counts the rest', () => {
    const unfit = Array.from({ length: 25 }, (_, i) => ({
      deviceId: `dev-${String(i).padStart(2, '0')}`,
      profile: 'cpu',
    }));
    const { message } = noVariantError({ name: 'clf', version: 2 }, ['fp16'], unfit, acceptsOf);
    expect(message).toContain('no variant for 25 targeted device(s)');
    expect(message).toContain('dev-19 (cpu) and 5 more.');
    expect(message).not.toContain('dev-20');
    expect(message.match(/\(cpu\)/g)).toHaveLength(20);
  });

  it("a late joiner's skip reason says what the version offers and what its profile accepts", () => {
    expect(noVariantReason({ name: 'clf', version: 2 }, ['fp16'], 'cpu', PROFILES.cpu)).toBe(
      'clf@2 offers fp16; profile cpu accepts default, fp32',
    );
  });
});
