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
    [
      'an option the provider does not take (a typo)',
      { executionProviders: [{ name: 'cuda', options: { deviceID: 0 } }] },
    ],
    ['a negative CUDA device', { executionProviders: [{ name: 'cuda', options: { deviceId: -1 } }] }],
    [
      'fp16 given as a string',
      { executionProviders: [{ name: 'tensorrt', options: { fp16Enable: 'yes' } }] },
    ],
    [
      'an engine cache outside the data directory',
      { executionProviders: [{ name: 'tensorrt', options: { engineCachePath: '../../etc' } }] },
    ],
    [
      'an absolute engine cache path',
      { executionProviders: [{ name: 'tensorrt', options: { engineCachePath: '/var/trt' } }] },
    ],
  ])('rejects %s', (_what, patch) => {
    expect(FirmwareProfileSchema.safeParse({ ...minimal, ...patch }).success).toBe(false);
  });

  it("takes each provider's own options: TensorRT precision and engine cache, CUDA and DirectML devices, Core ML flags", () => {
    const profile = parseFirmwareProfile({
      ...minimal,
      executionProviders: [
        {
          name: 'tensorrt',
          options: {
            deviceId: 1,
            fp16Enable: true,
            int8Enable: false,
            engineCacheEnable: true,
            engineCachePath: 'trt/cache',
          },
        },
        { name: 'cuda', options: { deviceId: 1 } },
        { name: 'dml', options: { deviceId: 0 } },
        { name: 'coreml', options: { aneOnly: true, staticShapesOnly: true } },
        { name: 'cpu', options: { useArena: false } },
      ],
    });
    expect(profile.executionProviders.map((p) => p.name)).toEqual([
      'tensorrt',
      'cuda',
      'dml',
      'coreml',
      'cpu',
    ]);
    expect(profile.executionProviders[0]!.options).toMatchObject({
      fp16Enable: true,
      engineCachePath: 'trt/cache',
    });
  });
});
