/**
 * The fleet at a glance, the console's first screen: devices by status and profile and the model versions
 * they run, live and recent rollouts, drift alerts, running training, the latest audit events. A view: it
 * reads records and workflows and owns none. Devices are counted from the registry's in-memory index, reading
 * no device record, so it stays cheap at 10,000.
 */
import type { AuditLog } from '../audit/log.js';
import type { DeviceRegistry, DeviceSummary } from '../devices/registry.js';
import type { DeviceDrift, DriftReports } from '../drift/reports.js';
import type { RolloutController } from '../rollouts/controller.js';
import { isFinal, type RolloutRecord } from '../rollouts/record.js';
import type { TrainingRuns } from '../training/runs.js';

const RECENT_ROLLOUTS = 5;
const RECENT_EVENTS = 15;

export interface OverviewSources {
  devices: Pick<DeviceRegistry, 'summary' | 'profileIds'>;
  rollouts: Pick<RolloutController, 'list'>;
  drift: Pick<DriftReports, 'devices'>;
  training: Pick<TrainingRuns, 'list'>;
  audit: Pick<AuditLog, 'recent'>;
}

export async function fleetOverview(sources: OverviewSources) {
  const [devices, rollouts, drift, runs, events] = await Promise.all([
    sources.devices.summary(),
    sources.rollouts.list(),
    sources.drift.devices(),
    sources.training.list(),
    sources.audit.recent(RECENT_EVENTS),
  ]);
  const finished = rollouts
    .filter((r) => isFinal(r.status.phase))
    .sort((a, b) => b.status.updatedAt.localeCompare(a.status.updatedAt));
  return {
    ...deviceCounts(devices, sources.devices.profileIds()),
    rollouts: {
      active: rollouts.filter((r) => !isFinal(r.status.phase)).map(rolloutBrief),
      recent: finished.slice(0, RECENT_ROLLOUTS).map(rolloutBrief),
    },
    drift: { alerts: driftAlerts(drift) },
    training: { running: runs.filter((r) => r.status === 'running').length },
    events: events.map(({ seq, at, actor, action, target, status }) => ({
      seq,
      at,
      actor,
      action,
      target,
      status,
    })),
  };
}

/** Devices by status and profile (every known profile, busiest first), and the model versions they run. */
function deviceCounts(summary: DeviceSummary, knownProfiles: readonly string[]) {
  const { total, online, offline, neverSeen } = summary;
  const profiles = new Map<string, number>(knownProfiles.map((p) => [p, 0]));
  for (const [profile, n] of summary.profiles) profiles.set(profile, n);
  return {
    devices: { total, online, offline, neverSeen },
    profiles: [...profiles]
      .map(([profile, n]) => ({ profile, devices: n }))
      .sort((a, b) => b.devices - a.devices || a.profile.localeCompare(b.profile)),
    versions: [...summary.versions].sort((a, b) => a.model.localeCompare(b.model) || b.version - a.version),
  };
}

function rolloutBrief(r: RolloutRecord) {
  return {
    id: r.id,
    model: { name: r.model.name, version: r.model.version },
    phase: r.status.phase,
    step: r.status.step,
    steps: r.spec.steps.length,
    createdAt: r.createdAt,
  };
}

/** Model versions with at least one device whose latest report says drift (reporting: those with a verdict). */
function driftAlerts(reports: readonly DeviceDrift[]) {
  const byVersion = new Map<
    string,
    { model: string; version: number; devicesDrifted: number; devicesReporting: number }
  >();
  for (const r of reports) {
    if (r.verdict === 'insufficient_data') continue;
    const key = `${r.model}@${r.version}`;
    const entry = byVersion.get(key) ?? {
      model: r.model,
      version: r.version,
      devicesDrifted: 0,
      devicesReporting: 0,
    };
    entry.devicesReporting++;
    if (r.verdict === 'drift') entry.devicesDrifted++;
    byVersion.set(key, entry);
  }
  return [...byVersion.values()]
    .filter((a) => a.devicesDrifted > 0)
    .sort((a, b) => a.model.localeCompare(b.model) || b.version - a.version);
}
