/**
 * The update state machine as a table: each row scripts what the effects report, where the process
 * "crashes" (after that state is persisted, all memory is lost and recovery starts from the persisted
 * record) and how many times, and the chain of persisted states that must result.
 */
import { describe, expect, it } from 'vitest';
import {
  step,
  type UpdateEffect,
  type UpdateEvent,
  type UpdateRecord,
} from '../../../../agent/updater/machine.js';
import type { Reason, UpdateState } from '../../../../shared/protocol/messages.js';
import { HAPPY_PATH } from '../../../support/update-states.js';

const MAX_REENTRIES = 3;

function fresh(): UpdateRecord {
  return {
    commandId: 'c1',
    rolloutId: 'r1',
    manifestText: '{}',
    artifactUrl: 'http://fleet/a',
    model: { name: 'm', version: 2 },
    sha256: null,
    slot: null,
    state: 'received',
    reason: null,
    executionProvider: null,
    reentries: {},
    seq: 1,
  };
}

type Outcome = Partial<Record<UpdateEffect['kind'], UpdateEvent>>;

const OK: Record<string, UpdateEvent> = {
  verify_manifest: { type: 'manifest_ok', model: { name: 'm', version: 2 }, sha256: 'ab'.repeat(32) },
  download: { type: 'downloaded' },
  verify_and_stage: { type: 'staged', slot: 'b' },
  continue: { type: 'continue' },
  load_and_selftest: { type: 'loaded', provider: 'cpu' },
  activate: { type: 'activated' },
};

/**
 * Drive the machine like the driver does: persist, then run effects. A crash right after `crashIn` is
 * persisted throws away the in-memory state; the next "process" recovers from disk.
 */
function simulate(outcomes: Outcome, crashIn?: UpdateState, crashes = 1) {
  let disk = fresh();
  const chain: UpdateState[] = [disk.state];
  const effects: string[] = [];
  let remainingCrashes = crashIn ? crashes : 0;
  let event: UpdateEvent | null = { type: 'start' };
  for (let guard = 0; guard < 100 && event; guard++) {
    const result = step(disk, event);
    if (result.record !== disk) {
      disk = result.record;
      if (chain[chain.length - 1] !== disk.state) chain.push(disk.state);
    }
    event = null;
    if (remainingCrashes > 0 && disk.state === crashIn) {
      remainingCrashes--;
      event = { type: 'recover', maxReentries: MAX_REENTRIES };
      continue;
    }
    for (const effect of result.effects) {
      effects.push(effect.kind);
      if (effect.kind === 'report' || effect.kind === 'discard') continue;
      event = outcomes[effect.kind] ?? OK[effect.kind] ?? null;
    }
  }
  return { record: disk, chain: dedupe(chain), effects };
}

function dedupe(states: UpdateState[]): UpdateState[] {
  return states.filter((s, i) => i === 0 || states[i - 1] !== s);
}

const HAPPY = [...HAPPY_PATH];
const fail = (code: string): UpdateEvent => ({ type: 'failed', reason: { code, message: code } });

describe('update state machine: outcomes of each step', () => {
  const rows: { name: string; outcomes: Outcome; chain: UpdateState[]; reason?: string }[] = [
    { name: 'everything succeeds', outcomes: {}, chain: HAPPY },
    {
      name: 'same version already serving',
      outcomes: { verify_manifest: { type: 'already_installed', provider: 'cpu' } },
      chain: ['received', 'active'],
    },
    {
      name: 'bad signature',
      outcomes: { verify_manifest: fail('signature_invalid') },
      chain: ['received', 'failed'],
      reason: 'signature_invalid',
    },
    {
      name: 'expired',
      outcomes: { verify_manifest: fail('manifest_expired') },
      chain: ['received', 'failed'],
      reason: 'manifest_expired',
    },
    {
      name: 'download fails',
      outcomes: { download: fail('download_failed') },
      chain: ['received', 'downloading', 'failed'],
      reason: 'download_failed',
    },
    {
      name: 'artifact hash differs',
      outcomes: { verify_and_stage: fail('artifact_sha256_mismatch') },
      chain: ['received', 'downloading', 'verifying', 'failed'],
      reason: 'artifact_sha256_mismatch',
    },
    {
      name: 'no provider loads it',
      outcomes: { load_and_selftest: fail('no_execution_provider') },
      chain: ['received', 'downloading', 'verifying', 'staged', 'loading', 'failed'],
      reason: 'no_execution_provider',
    },
    {
      name: 'self-test mismatch',
      outcomes: { load_and_selftest: fail('selftest_failed') },
      chain: ['received', 'downloading', 'verifying', 'staged', 'loading', 'failed'],
      reason: 'selftest_failed',
    },
    {
      name: 'activation fails',
      outcomes: { activate: fail('activation_failed') },
      chain: ['received', 'downloading', 'verifying', 'staged', 'loading', 'activating', 'failed'],
      reason: 'activation_failed',
    },
  ];

  it.each(rows)('$name', ({ outcomes, chain, reason }) => {
    const result = simulate(outcomes);
    expect(result.chain).toEqual(chain);
    expect(result.record.reason?.code).toBe(reason);
    // Every state change is reported, and a finished update cleans up after itself.
    expect(result.effects.filter((e) => e === 'report').length).toBe(chain.length);
    expect(result.effects[result.effects.length - 1]).toBe('discard');
  });

  it('records what the machine learned on the way (model, sha256, slot, provider)', () => {
    const { record } = simulate({});
    expect(record).toMatchObject({
      sha256: 'ab'.repeat(32),
      slot: 'b',
      executionProvider: 'cpu',
      state: 'active',
    });
  });
});

describe('update state machine: a crash after each persisted state', () => {
  const states: UpdateState[] = ['received', 'downloading', 'verifying', 'staged', 'loading', 'activating'];

  it.each(states)('crash while %s: recovery resumes that state and the update completes', (crashIn) => {
    const result = simulate({}, crashIn);
    expect(result.chain).toEqual(HAPPY);
    expect(result.record.reentries[crashIn]).toBe(1);
  });

  // `staged` is left as soon as it is recovered (its work is only `continue`), so repeated crashes after it
  // show up as re-entries of `loading`, which has its own row.
  it.each(states.filter((s) => s !== 'staged'))(
    'crash loop while %s: more than the allowed re-entries fails with crash_loop',
    (crashIn) => {
      const result = simulate({}, crashIn, MAX_REENTRIES + 1);
      expect(result.record.state).toBe('failed');
      expect(result.record.reason?.code).toBe('crash_loop');
      expect(result.chain[result.chain.length - 2]).toBe(crashIn);
    },
  );

  it('recovering from a clean stop does not count as a re-entry', () => {
    const record: UpdateRecord = {
      ...fresh(),
      state: 'loading',
      slot: 'a',
      reentries: { loading: 2 },
      stoppedCleanly: true,
    };
    const result = step(record, { type: 'recover', maxReentries: MAX_REENTRIES });
    expect(result.record).toMatchObject({
      state: 'loading',
      reentries: { loading: 2 },
      stoppedCleanly: false,
    });
    expect(result.effects.map((e) => e.kind)).toEqual(['load_and_selftest']);
  });

  it('a crash exactly at the limit still completes', () => {
    const result = simulate({}, 'loading', MAX_REENTRIES);
    expect(result.record.state).toBe('active');
  });

  it('recovering `staged` goes straight on to loading (no work is lost or repeated)', () => {
    let record: UpdateRecord = { ...fresh(), state: 'staged', slot: 'a', sha256: 'cd'.repeat(32) };
    const result = step(record, { type: 'recover', maxReentries: MAX_REENTRIES });
    record = result.record;
    expect(record.state).toBe('loading');
    expect(result.effects.map((e) => e.kind)).toEqual(['report', 'load_and_selftest']);
  });
});

describe('update state machine: invariants', () => {
  const reason: Reason = { code: 'x', message: 'x' };

  it.each(['active', 'failed'] as UpdateState[])(
    '%s is terminal: no event changes it or causes effects',
    (state) => {
      const record = { ...fresh(), state };
      for (const event of [
        { type: 'start' },
        { type: 'failed', reason },
        { type: 'activated' },
        { type: 'recover', maxReentries: 3 },
      ] as UpdateEvent[]) {
        const result = step(record, event);
        expect(result.record).toBe(record);
        expect(result.effects).toEqual([]);
      }
    },
  );

  it('an event out of order fails the update instead of skipping a step', () => {
    const result = step({ ...fresh(), state: 'downloading' }, { type: 'activated' });
    expect(result.record.state).toBe('failed');
    expect(result.record.reason?.code).toBe('internal_error');
  });

  it('start does nothing for a record that is already under way (re-sent command)', () => {
    const record = { ...fresh(), state: 'loading' as const };
    expect(step(record, { type: 'start' })).toEqual({ record, effects: [] });
  });

  it('a failure from any non-terminal state ends in failed with that reason', () => {
    for (const state of [
      'received',
      'downloading',
      'verifying',
      'staged',
      'loading',
      'activating',
    ] as UpdateState[]) {
      const result = step({ ...fresh(), state }, { type: 'failed', reason });
      expect(result.record).toMatchObject({ state: 'failed', reason });
      expect(result.effects.map((e) => e.kind)).toEqual(['report', 'discard']);
    }
  });
});

describe('update state machine: shadow mode and rollback requests', () => {
  const shadowing = (): UpdateRecord => ({ ...fresh(), mode: 'shadow', state: 'loading', slot: 'b' });

  it('a shadow install waits in shadowing after its self-test, starting the shadow', () => {
    const r = step(shadowing(), { type: 'loaded', provider: 'cpu' });
    expect(r.record.state).toBe('shadowing');
    expect(r.effects).toEqual([{ kind: 'report' }, { kind: 'start_shadow' }]);
    // Nothing the effects report moves it on; only a request does.
    expect(step(r.record, { type: 'activated' }).record.state).toBe('failed');
  });

  it('activate_requested switches a shadowing candidate in; it is ignored in any other state', () => {
    const waiting = step(shadowing(), { type: 'loaded', provider: 'cpu' }).record;
    const r = step(waiting, { type: 'activate_requested' });
    expect(r.record.state).toBe('activating');
    expect(r.effects).toEqual([{ kind: 'report' }, { kind: 'activate' }]);
    const downloading: UpdateRecord = { ...fresh(), state: 'downloading' };
    expect(step(downloading, { type: 'activate_requested' })).toEqual({ record: downloading, effects: [] });
  });

  it.each(['received', 'downloading', 'verifying', 'staged', 'loading', 'activating', 'shadowing'] as const)(
    'rollback_requested while %s discards the candidate and ends rolled_back with the reason',
    (state) => {
      const reason: Reason = { code: 'gate_failed', message: 'too slow' };
      const r = step({ ...fresh(), state }, { type: 'rollback_requested', reason });
      expect(r.record).toMatchObject({ state: 'rolled_back', reason });
      expect(r.effects).toEqual([{ kind: 'report' }, { kind: 'discard' }]);
      expect(step(r.record, { type: 'activate_requested' }).effects).toEqual([]); // terminal
    },
  );

  it('recovering in shadowing restarts the shadow without counting a crash', () => {
    let record: UpdateRecord = { ...shadowing(), state: 'shadowing' };
    for (let i = 0; i < MAX_REENTRIES + 2; i++) {
      const r = step(record, { type: 'recover', maxReentries: MAX_REENTRIES });
      expect(r.effects).toEqual([{ kind: 'start_shadow' }]);
      record = r.record;
    }
    expect(record.state).toBe('shadowing');
  });
});
