/** Canned API bodies shaped as the HTTP API contract describes them. */
import type { Device, ModelVersion, Rollout } from '../../../../fleet-server/cli/client.js';
import { allowedActions } from '../../../../fleet-server/rollouts/actions.js';
import { newRollout, summaryOf } from '../../../../fleet-server/rollouts/record.js';
import { presetSpec } from '../../../../fleet-server/rollouts/spec.js';

export const SHA = 'b25a8eb9e4621da2fbe5df9b24a38ed3a2ffe4b157335d1f2fbc3533896c4e85';

export function device(overrides: Partial<Device> = {}): Device {
  return {
    id: 'dev-aaa111',
    tags: { site: 'berlin', line: '2' },
    profile: 'x86_64-cpu',
    status: 'online',
    lastSeen: '2026-01-01T11:59:30.000Z',
    enrolledAt: '2025-12-31T00:00:00.000Z',
    facts: { hostname: 'edge-1', arch: 'x64' },
    agentVersion: '0.1.0',
    models: [{ name: 'demo', version: 2, executionProvider: 'cpu' }],
    telemetry: null,
    ...overrides,
  };
}

export function modelVersion(overrides: Partial<ModelVersion> = {}): ModelVersion {
  const version: Omit<ModelVersion, 'variants'> = {
    name: 'demo',
    version: 3,
    createdAt: '2026-01-01T10:00:00.000Z',
    createdBy: 'bootstrap-admin',
    artifact: { sha256: SHA, size: 535 },
    lineage: null,
    aliases: [],
    manifest: {
      schema: 'edgefleet.manifest/v1',
      name: 'demo',
      version: 3,
      variant: 'default',
      artifact: { sha256: SHA, size: 535, mediaType: 'application/onnx' },
      inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 4] }],
      outputs: [{ name: 'output', dtype: 'float32', shape: ['batch', 2] }],
      opset: 13,
      createdAt: '2026-01-01T10:00:00.000Z',
      expiresAt: '2027-01-01T10:00:00.000Z',
      golden: {
        inputs: [{ name: 'input', dtype: 'float32', shape: [1, 4], data: [0, 0, 0, 0] }],
        outputs: [{ name: 'output', dtype: 'float32', shape: [1, 2], data: [0.5, 0.5] }],
        tolerance: { abs: 1e-4, rel: 1e-3 },
      },
      referenceStats: null,
      labels: {},
      signatures: [{ keyid: 'f4a48f03378108bb'.padEnd(64, '0'), sig: 'c2ln' }],
    },
  };
  const first = {
    variant: 'default',
    createdAt: version.createdAt,
    createdBy: version.createdBy,
    manifest: version.manifest,
    artifact: version.artifact,
  };
  return { ...version, variants: [first], ...overrides };
}

export function rollout(
  states: Rollout['devices'][number]['state'][] = ['pending', 'downloading'],
  overrides: Partial<Rollout> = {},
): Rollout {
  const base = newRollout({
    id: 'ro-1',
    model: { name: 'demo', version: 3 },
    targets: { tags: { site: 'berlin' } },
    spec: presetSpec('all-at-once'),
    deviceIds: states.map((_, i) => `dev-${i}00`),
    cohortKey: (id) => Number(id.slice(4)) / 1000,
    actor: 'ops',
    now: new Date('2026-01-01T11:00:00.000Z'),
  });
  const devices = base.devices.map((d, i) => {
    const state = states[i]!;
    return {
      ...d,
      state,
      mode: state === 'waiting' ? null : ('activate' as const),
      reason: state === 'failed' ? { code: 'signature_invalid', message: 'signature does not match' } : null,
      commandId: state === 'waiting' ? null : `cmd-${i}`,
      executionProvider: state === 'active' ? 'cpu' : null,
    };
  });
  const record = { ...base, devices };
  const summary = summaryOf(record);
  const phase =
    summary.pending + summary.inProgress > 0 ? 'progressing' : summary.failed > 0 ? 'failed' : 'succeeded';
  return {
    ...record,
    status: { ...record.status, phase },
    phase,
    percent: 100,
    summary,
    actions: allowedActions(phase),
    ...overrides,
  } as Rollout;
}
