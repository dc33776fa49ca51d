/**
 * Model versions: push (store the artifact, inspect it in ONNX Runtime, sign its manifest), list and get.
 * Versions are integers, strictly increasing per model name; pushes of one name are serialized so two
 * concurrent pushes never get the same number.
 *
 * Storage: collection `model-versions`, key `<name>/<version zero-padded to 10>` → ModelVersionRecord, so a
 * prefix scan of `<name>/` lists a model's versions in order.
 */
import { NotFoundError, TooLargeError } from '../../shared/errors.js';
import { MANIFEST_SCHEMA, type Manifest, ModelNameSchema, signManifest } from '../../shared/manifest.js';
import type { ArtifactStore } from '../store/artifacts.js';
import type { Collection } from '../store/db.js';
import { KeyedMutex } from '../store/lock.js';
import { inspectModel, type OrtApi, type SampleInput } from './inspect.js';
import type { KeyRing } from './keys.js';

export interface ModelVersionRecord {
  name: string;
  version: number;
  createdAt: string;
  createdBy: string;
  manifest: Manifest;
  artifact: { sha256: string; size: number };
}

export interface ModelSummary {
  name: string;
  latestVersion: number;
  versionCount: number;
  updatedAt: string;
}

export function versionKey(name: string, version: number): string {
  return `${name}/${String(version).padStart(10, '0')}`;
}

export class ModelRegistry {
  private readonly lock = new KeyedMutex();

  constructor(
    private readonly versions: Collection<ModelVersionRecord>,
    private readonly artifacts: ArtifactStore,
    private readonly keys: KeyRing,
    private readonly ort: OrtApi,
    private readonly options: { maxModelBytes: number; manifestValidityDays: number; now: () => Date },
  ) {}

  get maxModelBytes(): number {
    return this.options.maxModelBytes;
  }

  /** Register a version. Async throughout: a bad name or an oversized model rejects, it never throws. */
  async push(
    name: string,
    bytes: Uint8Array,
    options: { actor: string; sample?: SampleInput | undefined; expiresInDays?: number | undefined },
  ): Promise<ModelVersionRecord> {
    ModelNameSchema.parse(name);
    if (bytes.length > this.options.maxModelBytes) {
      throw new TooLargeError(
        `model is ${bytes.length} bytes, the fleet accepts at most ${this.options.maxModelBytes}`,
      );
    }
    return this.lock.run(name, async () => {
      const inspection = await inspectModel(this.ort, bytes, options.sample);
      const artifact = await this.artifacts.put(bytes);
      const latest = await this.latest(name);
      const version = (latest?.version ?? 0) + 1;
      const now = this.options.now();
      const days = options.expiresInDays ?? this.options.manifestValidityDays;
      const manifest = signManifest(
        {
          schema: MANIFEST_SCHEMA,
          name,
          version,
          artifact: { sha256: artifact.sha256, size: artifact.size, mediaType: 'application/onnx' },
          inputs: inspection.inputs,
          outputs: inspection.outputs,
          opset: inspection.opset,
          createdAt: now.toISOString(),
          expiresAt: new Date(now.getTime() + days * 86_400_000).toISOString(),
          golden: inspection.golden,
          referenceStats: null,
          labels: {},
        },
        this.keys.signing,
      );
      const record: ModelVersionRecord = {
        name,
        version,
        createdAt: now.toISOString(),
        createdBy: options.actor,
        manifest,
        artifact,
      };
      await this.versions.put(versionKey(name, version), record);
      return record;
    });
  }

  async latest(name: string): Promise<ModelVersionRecord | undefined> {
    const all = await this.versions.values(`${name}/`);
    return all[all.length - 1];
  }

  async get(name: string, version: number): Promise<ModelVersionRecord> {
    const record = await this.versions.get(versionKey(name, version));
    if (!record) throw new NotFoundError('model version', `${name}@${version}`);
    return record;
  }

  async listVersions(name: string): Promise<ModelVersionRecord[]> {
    const all = await this.versions.values(`${name}/`);
    if (all.length === 0) throw new NotFoundError('model', name);
    return all;
  }

  async list(): Promise<ModelSummary[]> {
    const byName = new Map<string, ModelSummary>();
    for (const record of await this.versions.values()) {
      const current = byName.get(record.name);
      byName.set(record.name, {
        name: record.name,
        latestVersion: Math.max(current?.latestVersion ?? 0, record.version),
        versionCount: (current?.versionCount ?? 0) + 1,
        updatedAt: current && current.updatedAt > record.createdAt ? current.updatedAt : record.createdAt,
      });
    }
    return [...byName.values()];
  }
}
