/**
 * ONNX Runtime behind the `ModelRuntime` interface: the only module that touches onnxruntime-node.
 * A model loads with the first execution provider of the firmware profile that works; each provider is
 * tried alone, so a failure is attributable, and the reasons for the ones skipped are kept for reporting.
 * Thread spinning is off: ORT's default pool spins on every core between requests, which a device shared
 * with its own applications cannot afford.
 */
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

/** Map a profile's provider entry to what onnxruntime-node takes. */
function providerConfig(ep: ExecutionProvider): ort.InferenceSession.ExecutionProviderConfig {
  if (Object.keys(ep.options).length === 0) return ep.name;
  return { name: ep.name, ...ep.options } as ort.InferenceSession.ExecutionProviderConfig;
}

export class OrtRuntime implements ModelRuntime {
  async load(path: string, profile: FirmwareProfile): Promise<LoadedModel> {
    const skipped: { provider: string; reason: string }[] = [];
    for (const ep of profile.executionProviders) {
      try {
        const session = await ort.InferenceSession.create(path, {
          executionProviders: [providerConfig(ep)],
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
    throw new EdgefleetError(
      'no_execution_provider',
      `no execution provider of profile ${profile.id} could load the model: ${skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`,
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
