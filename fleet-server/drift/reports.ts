/**
 * Drift as devices report it, kept two ways: each device's latest report per model (what is drifting now,
 * and since when), and a history of compact reports per model version (drift over time, per feature).
 * Times are the fleet's receive time; how long a device has held its verdict comes from its own clock as a
 * difference (report time − verdict start), so clock skew between device and fleet cannot stretch it.
 *
 * Storage: `drift-latest` `<model>/<deviceId>` → DeviceDrift;
 * `drift-history` `<model>/<version, 6 digits>/<receivedAt, 13 digits>/<deviceId>` → HistoryEntry, pruned
 * past the retention.
 */
import type { DriftMessage, DriftVerdictName } from '../../shared/protocol/messages.js';
import type { Collection } from '../store/db.js';
import { firstVersion, migrated } from '../store/migrations.js';

export interface DeviceDrift {
  deviceId: string;
  model: string;
  version: number;
  verdict: DriftVerdictName;
  /** Fleet time the device's current verdict began (ms). */
  since: number;
  receivedAt: number;
  driftedShare: number;
  samples: number;
  features: { name: string; psi: number; jensenShannon: number; pValue: number; drifted: boolean }[];
  prediction: DriftMessage['prediction'];
  concept: DriftMessage['concept'];
  /** Concept drift reported and not yet followed by a report without it (fleet time it began). */
  conceptSince: number | null;
  captureRate: number;
}

export interface HistoryEntry {
  deviceId: string;
  receivedAt: number;
  verdict: DriftVerdictName;
  driftedShare: number;
  samples: number;
  /** Per feature, in the model's feature order: psi and whether it drifted. */
  psi: number[];
  drifted: boolean[];
  featureNames: string[];
  predictionDrifted: boolean | null;
  conceptDrifted: boolean;
}

export interface VersionDrift {
  version: number;
  devices: number;
  drifting: number;
  noDrift: number;
  insufficient: number;
  /** Drifting devices over devices with a verdict (null when none has one). */
  share: number | null;
  predictionDrifting: number;
  conceptDrifting: number;
  features: { name: string; drifting: number; meanPsi: number }[];
}

export interface TimelinePoint {
  at: number;
  reports: number;
  drifting: number;
  /** Drifting reports over reports with a verdict in the bucket. */
  share: number | null;
  /** Mean PSI per feature in the bucket. */
  psi: Record<string, number>;
}

export const DRIFT_HISTORY_RETENTION_MS = 7 * 24 * 3600_000;
const PRUNE_EVERY = 200;

export class DriftReports {
  private writes = 0;

  private readonly latest: Collection<DeviceDrift>;
  private readonly history: Collection<HistoryEntry>;

  /** `latest` and `history` as stored: the reports apply their migrations (both v1 so far) to them. */
  constructor(
    latest: Collection<DeviceDrift>,
    history: Collection<HistoryEntry>,
    private readonly options: { now: () => Date; retentionMs?: number },
  ) {
    this.latest = migrated(latest, firstVersion('drift-latest'));
    this.history = migrated(history, firstVersion('drift-history'));
  }

  async record(deviceId: string, message: DriftMessage): Promise<DeviceDrift> {
    const receivedAt = this.options.now().getTime();
    const key = `${message.model.name}/${deviceId}`;
    const previous = await this.latest.get(key);
    const held = Math.max(0, message.ts - message.verdictSince);
    const sameVerdict =
      previous && previous.version === message.model.version && previous.verdict === message.verdict;
    const conceptNow = message.concept.drifted;
    const entry: DeviceDrift = {
      deviceId,
      model: message.model.name,
      version: message.model.version,
      verdict: message.verdict,
      // Keep the first-seen start while the verdict holds (reports repeat it); else the device's own span.
      since: sameVerdict ? Math.min(previous.since, receivedAt - held) : receivedAt - held,
      receivedAt,
      driftedShare: message.driftedShare,
      samples: message.window?.samples ?? 0,
      features: message.features.map((f) => ({
        name: f.name,
        psi: f.psi,
        jensenShannon: f.jensenShannon,
        pValue: f.adjustedPValue,
        drifted: f.drifted,
      })),
      prediction: message.prediction,
      concept: message.concept,
      conceptSince: conceptNow
        ? (previous?.version === message.model.version && previous.conceptSince) || receivedAt
        : null,
      captureRate: message.captureRate,
    };
    await this.latest.put(key, entry);
    const version = String(message.model.version).padStart(6, '0');
    await this.history.put(
      `${message.model.name}/${version}/${String(receivedAt).padStart(13, '0')}/${deviceId}`,
      {
        deviceId,
        receivedAt,
        verdict: message.verdict,
        driftedShare: message.driftedShare,
        samples: entry.samples,
        psi: message.features.map((f) => f.psi),
        drifted: message.features.map((f) => f.drifted),
        featureNames: message.features.map((f) => f.name),
        predictionDrifted: message.prediction?.drifted ?? null,
        conceptDrifted: conceptNow,
      },
    );
    if (++this.writes % PRUNE_EVERY === 0) await this.prune(receivedAt);
    return entry;
  }

  /** Every device's latest report for `model` (all models when absent). */
  async devices(model?: string): Promise<DeviceDrift[]> {
    return this.latest.values(model ? `${model}/` : undefined);
  }

  /** One device's latest report for `model`; undefined before its first. */
  async device(model: string, deviceId: string): Promise<DeviceDrift | undefined> {
    return (await this.latest.get(`${model}/${deviceId}`)) ?? undefined;
  }

  /** Models with drift reports. */
  async models(): Promise<string[]> {
    return [...new Set((await this.latest.values()).map((d) => d.model))].sort();
  }

  /** The latest reports of `model` grouped by the version each device ran. */
  async byVersion(model: string): Promise<VersionDrift[]> {
    const groups = new Map<number, DeviceDrift[]>();
    for (const d of await this.devices(model)) groups.set(d.version, [...(groups.get(d.version) ?? []), d]);
    return [...groups.entries()].sort(([a], [b]) => b - a).map(([version, list]) => summarize(version, list));
  }

  /**
   * Drift of `model@version` over time, in buckets of `bucketMs` since `sinceMs`: each device's reports in
   * a bucket, with mean PSI per feature.
   */
  async timeline(
    model: string,
    version: number,
    sinceMs: number,
    bucketMs: number,
  ): Promise<TimelinePoint[]> {
    const prefix = `${model}/${String(version).padStart(6, '0')}/`;
    const buckets = new Map<
      number,
      { reports: number; drifting: number; verdicts: number; psi: Map<string, number[]> }
    >();
    for (const h of await this.history.values(prefix)) {
      if (h.receivedAt < sinceMs) continue;
      const at = sinceMs + Math.floor((h.receivedAt - sinceMs) / bucketMs) * bucketMs;
      const b = buckets.get(at) ?? { reports: 0, drifting: 0, verdicts: 0, psi: new Map() };
      b.reports++;
      if (h.verdict !== 'insufficient_data') b.verdicts++;
      if (h.verdict === 'drift') b.drifting++;
      for (const [i, name] of h.featureNames.entries()) {
        const list = b.psi.get(name) ?? [];
        list.push(h.psi[i]!);
        b.psi.set(name, list);
      }
      buckets.set(at, b);
    }
    return [...buckets.entries()]
      .sort(([a], [b]) => a - b)
      .map(([at, b]) => ({
        at,
        reports: b.reports,
        drifting: b.drifting,
        share: b.verdicts > 0 ? b.drifting / b.verdicts : null,
        psi: Object.fromEntries(
          [...b.psi].map(([name, v]) => [name, v.reduce((x, y) => x + y, 0) / v.length]),
        ),
      }));
  }

  /**
   * For a rollout's drift_share gate: of `deviceIds`, those whose latest report of `model@version` arrived
   * since `sinceMs` with a verdict (reporting), and those among them drifting.
   */
  async gateInput(
    deviceIds: readonly string[],
    model: { name: string; version: number },
    sinceMs: number,
  ): Promise<{ reporting: number; drifted: number }> {
    const keys = deviceIds.map((id) => `${model.name}/${id}`);
    let reporting = 0;
    let drifted = 0;
    for (const d of await this.latest.getMany(keys)) {
      if (!d || d.version !== model.version || d.receivedAt < sinceMs || d.verdict === 'insufficient_data')
        continue;
      reporting++;
      if (d.verdict === 'drift') drifted++;
    }
    return { reporting, drifted };
  }

  private async prune(nowMs: number): Promise<void> {
    const cutoff = nowMs - (this.options.retentionMs ?? DRIFT_HISTORY_RETENTION_MS);
    for (const [key, h] of await this.history.entries())
      if (h.receivedAt < cutoff) await this.history.del(key);
  }
}

/** One group of latest reports (a version, or a cohort within it) as counts per verdict and feature. */
export function summarize(version: number, list: DeviceDrift[]): VersionDrift {
  const drifting = list.filter((d) => d.verdict === 'drift').length;
  const noDrift = list.filter((d) => d.verdict === 'no_drift').length;
  const features = new Map<string, { drifting: number; psi: number[] }>();
  for (const d of list) {
    for (const f of d.features) {
      const agg = features.get(f.name) ?? { drifting: 0, psi: [] };
      if (f.drifted) agg.drifting++;
      agg.psi.push(f.psi);
      features.set(f.name, agg);
    }
  }
  return {
    version,
    devices: list.length,
    drifting,
    noDrift,
    insufficient: list.length - drifting - noDrift,
    share: drifting + noDrift > 0 ? drifting / (drifting + noDrift) : null,
    predictionDrifting: list.filter((d) => d.prediction?.drifted).length,
    conceptDrifting: list.filter((d) => d.conceptSince !== null).length,
    features: [...features.entries()].map(([name, f]) => ({
      name,
      drifting: f.drifting,
      meanPsi: f.psi.reduce((a, b) => a + b, 0) / f.psi.length,
    })),
  };
}
