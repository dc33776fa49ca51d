/**
 * ONNX Runtime behind the `ModelRuntime` interface: the only module that touches onnxruntime-node.
 * A model loads with the first execution provider of the firmware profile that works; each provider is
 * tried alone, so a failure is attributable, and the reasons for the ones skipped are kept for reporting.
 * Thread spinning is off: ORT's default pool spins on every core between requests, which a device shared
 * with its own applications cannot afford.
 */
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { EdgefleetError } from '../../shared/errors.js';
import type { ExecutionProvider, FirmwareProfile } from '../../shared/firmware-profile.js';
import type { DType, TypedData } from '../../shared/tensors.js';

export type { TypedData };

export interface FeedTensor {
  dtype: DType;
  data: TypedData;
  dims: number[];
}

export interface OutputTensor {
  dtype: string;
  data: ArrayLike<number | bigint | boolean>;
  dims: readonly number[];
}

export interface LoadedModel {
  /** The execution provider the session actually runs on. */
  provider: string;
  /** Providers tried before `provider`, with why each did not load. */
  skipped: { provider: string; reason: string }[];
  run(feeds: Record<string, FeedTensor>): Promise<Record<string, OutputTensor>>;
  release(): Promise<void>;
}

export interface ModelRuntime {
  load(path: string, profile: FirmwareProfile): Promise<LoadedModel>;
}

/** Core ML's flag bits (onnxruntime's coreml_provider_factory.h). */
const COREML_FLAGS = { cpuOnly: 0x001, aneOnly: 0x004, staticShapesOnly: 0x008 } as const;

/**
 * A profile's provider entry as onnxruntime-node takes it, plus the environment it needs. The Node binding
 * has no session option for TensorRT's precision or engine cache; ONNX Runtime reads them from `ORT_TENSORRT_*`
 * when the provider is created, so they are set just before. The engine cache lives in the data directory.
 */
export function providerConfig(
  ep: ExecutionProvider,
  dataDir: string | undefined,
): { config: ort.InferenceSession.ExecutionProviderConfig; env: Record<string, string> } {
  switch (ep.name) {
    case 'cpu':
      return {
        config: ep.options.useArena === undefined ? 'cpu' : { name: 'cpu', useArena: ep.options.useArena },
        env: {},
      };
    case 'cuda':
    case 'dml':
      return { config: { name: ep.name, deviceId: ep.options.deviceId ?? 0 }, env: {} };
    case 'coreml': {
      let coreMlFlags = 0;
      for (const [key, bit] of Object.entries(COREML_FLAGS))
        if (ep.options[key as keyof typeof COREML_FLAGS]) coreMlFlags |= bit;
      return {
        config: { name: 'coreml', coreMlFlags } as ort.InferenceSession.ExecutionProviderConfig,
        env: {},
      };
    }
    case 'tensorrt': {
      const o = ep.options;
      const flag = (v: boolean | undefined) => (v ? '1' : '0');
      const env: Record<string, string> = {
        ORT_TENSORRT_FP16_ENABLE: flag(o.fp16Enable),
        ORT_TENSORRT_INT8_ENABLE: flag(o.int8Enable),
        ORT_TENSORRT_ENGINE_CACHE_ENABLE: flag(o.engineCacheEnable),
      };
      if (o.engineCacheEnable)
        env.ORT_TENSORRT_CACHE_PATH = resolve(dataDir ?? '.', o.engineCachePath ?? 'trt-cache');
      return { config: { name: 'tensorrt', deviceId: o.deviceId ?? 0 }, env };
    }
  }
}

export class OrtRuntime implements ModelRuntime {
  /** `dataDir`: where provider caches (TensorRT engines) may be written. */
  constructor(private readonly options: { dataDir?: string } = {}) {}

  async load(path: string, profile: FirmwareProfile): Promise<LoadedModel> {
    const skipped: { provider: string; reason: string }[] = [];
    for (const ep of profile.executionProviders) {
      try {
        const { config, env } = providerConfig(ep, this.options.dataDir);
        Object.assign(process.env, env);
        const session = await ort.InferenceSession.create(path, {
          executionProviders: [config],
          intraOpNumThreads: profile.intraOpThreads,
          interOpNumThreads: profile.interOpThreads,
          graphOptimizationLevel: 'all',
          // Provider probing failures are reported by us, with the reason; keep ORT's own log quiet.
          logSeverityLevel: ep.name === 'cpu' ? 2 : 4,
          extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
        });
        return wrap(session, ep.name, skipped);
      } catch (err) {
        skipped.push({ provider: ep.name, reason: firstLine((err as Error).message) });
      }
    }
    throw new NoExecutionProviderError(profile.id, skipped);
  }
}

/** No execution provider of a profile loaded the model; `skipped` says why, provider by provider. */
export class NoExecutionProviderError extends EdgefleetError {
  override readonly name = 'NoExecutionProviderError';
  constructor(
    profileId: string,
    readonly skipped: LoadedModel['skipped'],
  ) {
    super(
      'no_execution_provider',
      `no execution provider of profile ${profileId} could load the model: ${skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`,
    );
  }
}

function wrap(session: ort.InferenceSession, provider: string, skipped: LoadedModel['skipped']): LoadedModel {
  return {
    provider,
    skipped,
    async run(feeds) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const name in feeds) {
        const f = feeds[name]!;
        ortFeeds[name] = new ort.Tensor(f.dtype, f.data, f.dims);
      }
      const out = await session.run(ortFeeds);
      const result: Record<string, OutputTensor> = {};
      for (const name in out) {
        const t = out[name] as ort.Tensor;
        result[name] = { dtype: t.type, data: t.data as OutputTensor['data'], dims: t.dims };
      }
      return result;
    },
    release: () => session.release(),
  };
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.slice(0, 300);
}
