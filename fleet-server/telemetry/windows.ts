/**
 * Telemetry windows as devices report them, kept for a while so rollout gates can aggregate any cohort over
 * any recent time span (merged histograms, summed counts), and the console can chart one device's recent
 * traffic and resource use. Stamped with the fleet's receive time, so device clock skew cannot move a window
 * in or out of an analysis.
 *
 * Storage: `telemetry-windows` `<deviceId>/<receivedAt ms, 13 digits>/<message id>` → TelemetryWindow. Windows older than
 * the retention are pruned as a device's new ones arrive.
 */
import { emptyBuckets, LATENCY_BUCKETS, mergeBuckets } from '../../shared/histogram.js';
import type { ShadowStats, TelemetryMessage } from '../../shared/protocol/messages.js';
import type { Collection } from '../store/db.js';

export interface TelemetryWindow {
  receivedAt: number;
  windowMs: number;
  models: {
    name: string;
    version: number;
    requests: number;
    errors: number;
    latencyBuckets: number[] | null;
  }[];
  shadow: ShadowStats[];
  /** The agent process and the device over the window (absent in windows stored before they were kept). */
  process?: TelemetryMessage['process'];
  device?: TelemetryMessage['device'];
}

/** One device's inference traffic on one model version, summed over a span of windows. */
export interface VersionTraffic {
  requests: number;
  errors: number;
  latencyBuckets: number[];
}

/** One device's shadow comparisons of a candidate version, summed over a span of windows. */
export interface ShadowSums {
  compared: number;
  agreed: number;
  dropped: number;
  errors: number;
  activeLatencyBuckets: number[];
  candidateLatencyBuckets: number[];
}

/**
 * What the windows say about one model for a set of devices. Shaped as the rollouts' `FleetView` input
 * (rollouts/measure.ts) so the controller passes it on as is; telemetry does not import the rollouts.
 */
export interface TelemetryView {
  /** Per device, traffic by version; devices that reported none of this model are absent. */
  traffic: Map<string, Map<number, VersionTraffic>>;
  /** Per device, shadow comparisons of the candidate; devices that compared nothing are absent. */
  shadow: Map<string, ShadowSums>;
}

function emptyShadowSums(): ShadowSums {
  return {
    compared: 0,
    agreed: 0,
    dropped: 0,
    errors: 0,
    activeLatencyBuckets: emptyBuckets(),
    candidateLatencyBuckets: emptyBuckets(),
  };
}

export const DEFAULT_RETENTION_MS = 2 * 3600_000;
const PRUNE_EVERY = 50;

export class TelemetryWindows {
  private readonly writesSincePrune = new Map<string, number>();

  constructor(
    private readonly windows: Collection<TelemetryWindow>,
    private readonly options: { now: () => Date; retentionMs?: number },
  ) {}

  async record(deviceId: string, message: TelemetryMessage): Promise<void> {
    const receivedAt = this.options.now().getTime();
    const window: TelemetryWindow = {
      receivedAt,
      windowMs: message.windowMs,
      models: message.models.map((m) => ({
        name: m.name,
        version: m.version,
        requests: m.requests,
        errors: m.errors,
        latencyBuckets: m.latencyBuckets?.length === LATENCY_BUCKETS ? m.latencyBuckets : null,
      })),
      shadow: (message.shadow ?? []).filter(
        (s) =>
          s.activeLatencyBuckets.length === LATENCY_BUCKETS &&
          s.candidateLatencyBuckets.length === LATENCY_BUCKETS,
      ),
      process: message.process,
      device: message.device,
    };
    // The message id keeps two windows received in the same millisecond apart.
    await this.windows.put(`${deviceId}/${String(receivedAt).padStart(13, '0')}/${message.id}`, window);
    const writes = (this.writesSincePrune.get(deviceId) ?? 0) + 1;
    this.writesSincePrune.set(deviceId, writes);
    if (writes >= PRUNE_EVERY) {
      this.writesSincePrune.set(deviceId, 0);
      await this.prune(deviceId, receivedAt - (this.options.retentionMs ?? DEFAULT_RETENTION_MS));
    }
  }

  async since(deviceId: string, sinceMs: number): Promise<TelemetryWindow[]> {
    return (await this.windows.values(`${deviceId}/`)).filter((w) => w.receivedAt >= sinceMs);
  }

  /** The gate view of `model` for these devices: traffic per version and shadow stats of `model` as candidate. */
  async view(
    deviceIds: readonly string[],
    model: { name: string; version: number },
    sinceMs: number,
  ): Promise<TelemetryView> {
    const traffic = new Map<string, Map<number, VersionTraffic>>();
    const shadow = new Map<string, ShadowSums>();
    for (const deviceId of deviceIds) {
      const byVersion = new Map<number, VersionTraffic>();
      for (const w of await this.since(deviceId, sinceMs)) {
        for (const m of w.models) {
          if (m.name !== model.name) continue;
          const t = byVersion.get(m.version) ?? { requests: 0, errors: 0, latencyBuckets: emptyBuckets() };
          t.requests += m.requests;
          t.errors += m.errors;
          // A device without histograms counts its requests but adds nothing to latency quantiles.
          if (m.latencyBuckets) mergeBuckets(t.latencyBuckets, m.latencyBuckets);
          byVersion.set(m.version, t);
        }
        for (const s of w.shadow) {
          if (s.candidate.name !== model.name || s.candidate.version !== model.version) continue;
          const agg = shadow.get(deviceId) ?? emptyShadowSums();
          agg.compared += s.compared;
          agg.agreed += s.agreed;
          agg.dropped += s.dropped;
          agg.errors += s.errors;
          mergeBuckets(agg.activeLatencyBuckets, s.activeLatencyBuckets);
          mergeBuckets(agg.candidateLatencyBuckets, s.candidateLatencyBuckets);
          shadow.set(deviceId, agg);
        }
      }
      if (byVersion.size > 0) traffic.set(deviceId, byVersion);
    }
    return { traffic, shadow };
  }

  private async prune(deviceId: string, beforeMs: number): Promise<void> {
    for (const [key, w] of await this.windows.entries(`${deviceId}/`)) {
      if (w.receivedAt >= beforeMs) break;
      await this.windows.del(key);
    }
  }
}
