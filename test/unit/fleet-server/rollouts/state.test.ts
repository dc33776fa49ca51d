/** The pure rollout rules: how device reports move per-device state, and the derived summary and phase. */
import { describe, expect, it } from 'vitest';
import {
  applyUpdate,
  type DeviceRolloutState,
  phaseOf,
  type RolloutRecord,
  summaryOf,
  unfinishedFor,
} from '../../../../fleet-server/rollouts/state.js';
import type { UpdateMessage } from '../../../../shared/protocol/messages.js';

const T0 = '2026-11-01T00:00:00.000Z';
const NOW = new Date('2026-11-01T00:05:00Z');

function rollout(...states: DeviceRolloutState[]): RolloutRecord {
  return {
    id: 'ro-1',
    model: { name: 'clf', version: 2 },
    targets: { tags: { site: 'a' } },
    strategy: 'all-at-once',
    createdAt: T0,
    createdBy: 'admin',
    devices: states.map((state, i) => ({
      deviceId: `dev-${i}`,
      commandId: `cmd-${i}`,
      state,
      reason: null,
      executionProvider: null,
      updatedAt: T0,
    })),
  };
}

function report(
  state: UpdateMessage['state'],
  extra: Partial<UpdateMessage> = {},
  commandId = 'cmd-0',
): UpdateMessage {
  return {
    v: 1,
    type: 'update',
    id: crypto.randomUUID(),
    ts: 0,
    commandId,
    rolloutId: 'ro-1',
    model: { name: 'clf', version: 2 },
    state,
    reason: null,
    executionProvider: null,
    serving: null,
    ...extra,
  };
}

describe('applyUpdate', () => {
  it.each([
    { from: 'pending', report: report('received'), to: 'received' },
    { from: 'pending', report: report('active'), to: 'active' },
    { from: 'downloading', report: report('verifying'), to: 'verifying' },
    { from: 'activating', report: report('active'), to: 'active' },
    { from: 'staged', report: report('failed'), to: 'failed' },
    // Terminal states are final within a rollout.
    { from: 'active', report: report('downloading'), to: 'active' },
    { from: 'failed', report: report('active'), to: 'failed' },
    // Reports on a command this device was not sent change nothing.
    { from: 'pending', report: report('active', {}, 'cmd-stale'), to: 'pending' },
    { from: 'pending', report: report('active', {}, 'cmd-1'), to: 'pending' },
  ] as const)('$from + $report.state ($report.commandId) → $to', ({ from, report: r, to }) => {
    const before = rollout(from, 'pending');
    const after = applyUpdate(before, 'dev-0', r, NOW);
    expect(after.devices[0]!.state).toBe(to);
    expect(after.devices[1]).toEqual(before.devices[1]);
    if (to === from) expect(after).toBe(before);
    else expect(after.devices[0]!.updatedAt).toBe(NOW.toISOString());
  });

  it('never changes the record it was given', () => {
    const before = rollout('pending');
    const copy = structuredClone(before);
    applyUpdate(before, 'dev-0', report('active'), NOW);
    expect(before).toEqual(copy);
  });

  it('keeps the failure reason and the execution provider, and names a missing reason', () => {
    const failed = applyUpdate(
      rollout('loading'),
      'dev-0',
      report('failed', { reason: { code: 'selftest_mismatch', message: 'output 0 off by 3' } }),
      NOW,
    );
    expect(failed.devices[0]!.reason).toEqual({ code: 'selftest_mismatch', message: 'output 0 off by 3' });
    const silent = applyUpdate(rollout('loading'), 'dev-0', report('failed'), NOW);
    expect(silent.devices[0]!.reason?.code).toBe('unknown');

    const loading = applyUpdate(
      rollout('staged'),
      'dev-0',
      report('loading', { executionProvider: 'cuda' }),
      NOW,
    );
    const active = applyUpdate(loading, 'dev-0', report('active'), NOW);
    expect(active.devices[0]!.executionProvider).toBe('cuda');
  });
});

describe('summary and phase', () => {
  it.each([
    { states: ['pending', 'pending'], phase: 'progressing', summary: [2, 2, 0, 0, 0] },
    { states: ['downloading', 'active'], phase: 'progressing', summary: [2, 0, 1, 1, 0] },
    { states: ['pending', 'failed'], phase: 'progressing', summary: [2, 1, 0, 0, 1] },
    { states: ['active', 'active'], phase: 'succeeded', summary: [2, 0, 0, 2, 0] },
    { states: ['active', 'failed'], phase: 'failed', summary: [2, 0, 0, 1, 1] },
    { states: ['failed'], phase: 'failed', summary: [1, 0, 0, 0, 1] },
  ] as const)('$states → $phase', ({ states, phase, summary }) => {
    const r = rollout(...states);
    expect(phaseOf(r)).toBe(phase);
    const [total, pending, inProgress, active, failed] = summary;
    expect(summaryOf(r)).toEqual({ total, pending, inProgress, active, failed });
  });
});

describe('unfinishedFor', () => {
  it('names the install a device still owes, and nothing once it is terminal or not targeted', () => {
    const r = rollout('verifying', 'active');
    expect(unfinishedFor(r, 'dev-0')?.commandId).toBe('cmd-0');
    expect(unfinishedFor(r, 'dev-1')).toBeUndefined();
    expect(unfinishedFor(r, 'dev-9')).toBeUndefined();
  });
});
