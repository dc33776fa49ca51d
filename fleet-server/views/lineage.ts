/**
 * A model version's lineage, assembled from the records that already hold it: devices → snapshot → training
 * run → model version → rollouts. Nothing here is stored twice; each link is the id the next record names.
 * A pushed (not trained) version has no run and no snapshot: its chain starts at the version.
 */
import type { DeviceRegistry } from '../devices/registry.js';
import type { SnapshotRecord, Snapshots } from '../pool/snapshots.js';
import type { Alias, ModelRegistry, ModelVersionRecord } from '../registry/models.js';
import type { RolloutController } from '../rollouts/controller.js';
import { phaseOf, type RolloutPhase, type RolloutSummary, summaryOf } from '../rollouts/record.js';
import type { TrainingRunRecord, TrainingRuns } from '../training/runs.js';

export interface LineageView {
  /** Where the snapshot's samples came from: enrolled devices, and other sources (imports). */
  sources: { source: string; kind: 'device' | 'import' | 'other'; samples: number }[];
  snapshot: SnapshotRecord | null;
  run: Pick<
    TrainingRunRecord,
    'id' | 'task' | 'status' | 'backend' | 'createdAt' | 'createdBy' | 'startedAt' | 'finishedAt' | 'config'
  > | null;
  version: Pick<
    ModelVersionRecord,
    'name' | 'version' | 'createdAt' | 'createdBy' | 'artifact' | 'lineage'
  > & {
    aliases: Alias[];
  };
  rollouts: { id: string; createdAt: string; phase: RolloutPhase; summary: RolloutSummary }[];
}

export async function lineageOf(
  deps: {
    models: ModelRegistry;
    training: TrainingRuns;
    snapshots: Snapshots;
    rollouts: RolloutController;
    devices: DeviceRegistry;
  },
  record: ModelVersionRecord,
): Promise<LineageView> {
  const lineage = record.lineage;
  const snapshot = lineage ? await deps.snapshots.get(lineage.snapshot).catch(() => null) : null;
  const run = lineage ? await deps.training.get(lineage.run).catch(() => null) : null;
  const sources: LineageView['sources'] = [];
  for (const [source, samples] of Object.entries(snapshot?.bySource ?? {})) {
    const kind = source.startsWith('import:')
      ? 'import'
      : (await deps.devices.find(source))
        ? 'device'
        : 'other';
    sources.push({ source, kind, samples });
  }
  const aliases = Object.values(await deps.models.aliases(record.name))
    .filter((a) => a.version === record.version)
    .map((a) => a.alias);
  const rollouts = (await deps.rollouts.list())
    .filter((r) => r.model.name === record.name && r.model.version === record.version)
    .map((r) => ({ id: r.id, createdAt: r.createdAt, phase: phaseOf(r), summary: summaryOf(r) }));
  return {
    sources,
    snapshot,
    run: run && {
      id: run.id,
      task: run.task,
      status: run.status,
      backend: run.backend,
      createdAt: run.createdAt,
      createdBy: run.createdBy,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      config: run.config,
    },
    version: {
      name: record.name,
      version: record.version,
      createdAt: record.createdAt,
      createdBy: record.createdBy,
      artifact: record.artifact,
      lineage,
      aliases,
    },
    rollouts,
  };
}
