import { describe, expect, it } from 'vitest';
import { FirmwareProfileSchema, parseFirmwareProfile } from '../../../shared/firmware-profile.js';

const minimal = {
  id: 'test-board',
  description: 'a board',
  arch: 'arm64',
  executionProviders: [{ name: 'cpu' }],
  intraOpThreads: 1,
  memoryBudgetBytes: 1024,
  maxModelBytes: 512,
};

describe('FirmwareProfileSchema', () => {
  it('fills defaults for options, interOpThreads and acceptsVariants', () => {
    expect(parseFirmwareProfile(minimal)).toEqual({
      ...minimal,
      executionProviders: [{ name: 'cpu', options: {} }],
      interOpThreads: 1,
      acceptsVariants: ['default'],
    });
  });

  it.each([
    ['an upper-case id', { id: 'Board' }],
    ['a one-character id', { id: 'b' }],
    ['an unknown arch', { arch: 'riscv64' }],
    ['an unknown execution provider', { executionProviders: [{ name: 'openvino' }] }],
    ['no execution providers', { executionProviders: [] }],
    ['zero threads', { intraOpThreads: 0 }],
    ['a non-positive byte limit', { maxModelBytes: 0 }],
    ['no accepted variants', { acceptsVariants: [] }],
    ['an object-valued provider option', { executionProviders: [{ name: 'cuda', options: { x: {} } }] }],
  ])('rejects %s', (_what, patch) => {
    expect(FirmwareProfileSchema.safeParse({ ...minimal, ...patch }).success).toBe(false);
  });
});
