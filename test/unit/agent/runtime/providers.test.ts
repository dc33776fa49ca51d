/** How a profile's provider entries reach ONNX Runtime: session options, and the environment TensorRT reads. */
import { describe, expect, it } from 'vitest';
import { providerConfig } from '../../../../agent/runtime/ort.js';
import { ExecutionProviderSchema } from '../../../../shared/firmware-profile.js';

const ep = (raw: unknown) => ExecutionProviderSchema.parse(raw);

describe('providerConfig', () => {
  it('passes device ids and CPU arena as session options', () => {
    expect(providerConfig(ep({ name: 'cuda', options: { deviceId: 1 } }), '/data')).toEqual({
      config: { name: 'cuda', deviceId: 1 },
      env: {},
    });
    expect(providerConfig(ep({ name: 'dml' }), '/data').config).toEqual({ name: 'dml', deviceId: 0 });
    expect(providerConfig(ep({ name: 'cpu' }), '/data').config).toBe('cpu');
    expect(providerConfig(ep({ name: 'cpu', options: { useArena: false } }), '/data').config).toEqual({
      name: 'cpu',
      useArena: false,
    });
  });

  it('turns Core ML options into its flag bits', () => {
    expect(
      providerConfig(ep({ name: 'coreml', options: { aneOnly: true, staticShapesOnly: true } }), '/d').config,
    ).toEqual({
      name: 'coreml',
      coreMlFlags: 0x004 | 0x008,
    });
  });

  it('gives TensorRT its precision and an engine cache inside the data directory, through ORT_TENSORRT_*', () => {
    const { config, env } = providerConfig(
      ep({
        name: 'tensorrt',
        options: { deviceId: 0, fp16Enable: true, engineCacheEnable: true, engineCachePath: 'trt-cache' },
      }),
      '/var/lib/edgefleet-agent',
    );
    expect(config).toEqual({ name: 'tensorrt', deviceId: 0 });
    expect(env).toEqual({
      ORT_TENSORRT_FP16_ENABLE: '1',
      ORT_TENSORRT_INT8_ENABLE: '0',
      ORT_TENSORRT_ENGINE_CACHE_ENABLE: '1',
      ORT_TENSORRT_CACHE_PATH: '/var/lib/edgefleet-agent/trt-cache',
    });
    // No cache asked for: no cache path, and the flags say off.
    expect(providerConfig(ep({ name: 'tensorrt' }), '/d').env).toEqual({
      ORT_TENSORRT_FP16_ENABLE: '0',
      ORT_TENSORRT_INT8_ENABLE: '0',
      ORT_TENSORRT_ENGINE_CACHE_ENABLE: '0',
    });
  });
});
