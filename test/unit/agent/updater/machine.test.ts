/**
 * The update state machine as a table: each row scripts what the effects report, where the process
 * "crashes" (after that state is persisted, all memory is lost and recovery starts from the persisted
 * record) and how many times, and the chain of persisted states that must result.
 */
import { describe, expect, it } from 'vitest';
import {
  step,
  TERMINAL,
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
  start_shadow: { type: 'shadow_started' },
  leave: { type: 'left' },
};

interface Script {
  outcomes?: Outcome;
  /** Crash right after this state is persisted, `crashes` times in a row. */
  crashIn?: UpdateState;
  crashes?: number;
  /** The record to start from (default: a fresh install in activate mode). */
  from?: UpdateRecord;
  /** Restarts while idle in `shadowing` (each after the shadow session had started again). */
  idleRestarts?: number;
  /** The fleet's commands, one each time the machine goes idle short of a terminal state. */
  commands?: ('activate' | 'rollback')[];
}

const FLEET_REASON: Reason = { code: 'gate_failed', message: 'shadow_agreement 0.8 not >= 0.99' };

/**
 * Drive the machine like the driver does: persist, then run effects. A crash right after `crashIn` is
 * persisted throws away the in-memory state; the next "process" recovers from disk. When the machine waits
 * (no event in hand, not terminal), a restart or the next fleet command comes in.
 */
function run(script: Script) {
  let disk = script.from ?? fresh();
  const chain: UpdateState[] = [disk.state];
  const effects: string[] = [];
  const commands = [...(script.commands ?? [])];
  let idleRestarts = script.idleRestarts ?? 0;
  let remainingCrashes = script.crashIn ? (script.crashes ?? 1) : 0;
  let event: UpdateEvent | null = { type: 'start' };
  for (let guard = 0; guard < 200; guard++) {
    if (!event) {
      if (TERMINAL.includes(disk.state)) break;
      if (idleRestarts > 0) {
        idleRestarts--;
        event = { type: 'recover', maxReentries: MAX_REENTRIES };
      } else {
        const command = commands.shift();
        if (!command) break;
        event =
          command === 'activate'
            ? { type: 'activate_requested' }
            : { type: 'rollback_requested', reason: FLEET_REASON };
      }
    }
    const result = step(disk, event);
    if (result.record !== disk) {
      disk = result.record;
      if (chain[chain.length - 1] !== disk.state) chain.push(disk.state);
    }
    event = null;
    if (remainingCrashes > 0 && disk.state === script.crashIn) {
      remainingCrashes--;
      event = { type: 'recover', maxReentries: MAX_REENTRIES };
      continue;
    }
    for (const effect of result.effects) {
      effects.push(effect.kind);
      if (effect.kind === 'report' || effect.kind === 'discard') continue;
      event = script.outcomes?.[effect.kind] ?? OK[effect.kind] ?? null;
    }
  }
  return { record: disk, chain: dedupe(chain), effects };
}

function simulate(outcomes: Outcome, crashIn?: UpdateState, crashes = 1) {
  return run({ outcomes, crashIn, crashes });
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

  it.each(['active', 'failed', 'rolled_back'] as UpdateState[])(
    '%s is terminal: no event changes it or causes effects',
    (state) => {
      const record = { ...fresh(), state };
      for (const event of [
        { type: 'start' },
        { type: 'failed', reason },
        { type: 'activated' },
        { type: 'activate_requested' },
        { type: 'rollback_requested', reason },
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

describe('update state machine: shadow mode', () => {
  const shadowInstall = (): UpdateRecord => ({ ...fresh(), mode: 'shadow', shadowPercent: 25 });
  const TO_SHADOWING: UpdateState[] = [
    'received',
    'downloading',
    'verifying',
    'staged',
    'loading',
    'shadowing',
  ];

  const rows: {
    name: string;
    script: Script;
    chain: UpdateState[];
    reason?: string;
    reentries?: Partial<Record<UpdateState, number>>;
  }[] = [
    { name: 'no command yet: waits in shadowing', script: {}, chain: TO_SHADOWING },
    {
      name: 'activate switches it in',
      script: { commands: ['activate'] },
      chain: [...TO_SHADOWING, 'activating', 'active'],
    },
    {
      name: 'rollback discards it',
      script: { commands: ['rollback'] },
      chain: [...TO_SHADOWING, 'rolled_back'],
      reason: 'gate_failed',
    },
    {
      name: 'a second activate after the first is ignored (terminal)',
      script: { commands: ['activate', 'activate'] },
      chain: [...TO_SHADOWING, 'activating', 'active'],
    },
    {
      name: 'crash while (re)loading the shadow, then activate',
      script: { crashIn: 'shadowing', commands: ['activate'] },
      chain: [...TO_SHADOWING, 'activating', 'active'],
      // counted while the candidate was reloading, cleared once it ran again
      reentries: { shadowing: 0 },
    },
    {
      name: 'crash loop while reloading the shadow: crash_loop',
      script: { crashIn: 'shadowing', crashes: MAX_REENTRIES + 1, commands: ['activate'] },
      chain: [...TO_SHADOWING, 'failed'],
      reason: 'crash_loop',
    },
    {
      name: 'many restarts while waiting never add up; activate still works',
      script: { idleRestarts: MAX_REENTRIES + 3, commands: ['activate'] },
      chain: [...TO_SHADOWING, 'activating', 'active'],
      reentries: { shadowing: 0 },
    },
    {
      name: 'restarts while waiting, then rollback',
      script: { idleRestarts: 2, commands: ['rollback'] },
      chain: [...TO_SHADOWING, 'rolled_back'],
      reason: 'gate_failed',
    },
    {
      name: 'crash while activating after the activate command: resumes activating',
      script: { crashIn: 'activating', commands: ['activate'] },
      chain: [...TO_SHADOWING, 'activating', 'active'],
      reentries: { activating: 1 },
    },
    {
      name: 'self-test fails: never shadows',
      script: { outcomes: { load_and_selftest: fail('selftest_failed') }, commands: ['activate'] },
      chain: ['received', 'downloading', 'verifying', 'staged', 'loading', 'failed'],
      reason: 'selftest_failed',
    },
  ];

  it.each(rows)('$name', ({ script, chain, reason, reentries }) => {
    const result = run({ ...script, from: shadowInstall() });
    expect(result.chain).toEqual(chain);
    expect(result.record.reason?.code).toBe(reason);
    if (reentries) expect(result.record.reentries).toMatchObject(reentries);
    expect(result.record.shadowPercent).toBe(25);
  });

  it('a candidate that no longer loads when the shadow restarts fails with the reason', () => {
    let starts = 0;
    const outcomes: Outcome = {};
    // First start (after the self-test) works; after the restart the session cannot be loaded again.
    Object.defineProperty(outcomes, 'start_shadow', {
      get: () => (starts++ === 0 ? { type: 'shadow_started' } : fail('no_execution_provider')),
      enumerable: true,
    });
    const result = run({ from: shadowInstall(), outcomes, idleRestarts: 1, commands: ['activate'] });
    expect(result.chain).toEqual([...TO_SHADOWING, 'failed']);
    expect(result.record.reason?.code).toBe('no_execution_provider');
    expect(result.effects.at(-1)).toBe('discard');
  });

  it('loaded leads to shadowing and starts the shadow; nothing the effects report moves it on', () => {
    const loading: UpdateRecord = { ...shadowInstall(), state: 'loading', slot: 'b' };
    const r = step(loading, { type: 'loaded', provider: 'cpu' });
    expect(r.record).toMatchObject({ state: 'shadowing', executionProvider: 'cpu' });
    expect(r.effects).toEqual([{ kind: 'report' }, { kind: 'start_shadow' }]);
    expect(step(r.record, { type: 'shadow_started' })).toEqual({ record: r.record, effects: [] });
    expect(step(r.record, { type: 'activated' }).record.reason?.code).toBe('internal_error');
  });

  it('activate_requested is ignored outside shadowing (an activate-mode install activates itself)', () => {
    for (const state of [
      'received',
      'downloading',
      'verifying',
      'staged',
      'loading',
      'activating',
    ] as const) {
      const record: UpdateRecord = { ...fresh(), state };
      expect(step(record, { type: 'activate_requested' })).toEqual({ record, effects: [] });
    }
  });

  it('shadow_started outside shadowing is an internal error, not a silent skip', () => {
    expect(step({ ...fresh(), state: 'loading' }, { type: 'shadow_started' }).record.reason?.code).toBe(
      'internal_error',
    );
  });

  it.each(['received', 'downloading', 'verifying', 'staged', 'loading', 'activating', 'shadowing'] as const)(
    'rollback_requested while %s discards the candidate and ends rolled_back with the reason',
    (state) => {
      const r = step({ ...fresh(), state }, { type: 'rollback_requested', reason: FLEET_REASON });
      expect(r.record).toMatchObject({ state: 'rolled_back', reason: FLEET_REASON });
      expect(r.effects).toEqual([{ kind: 'report' }, { kind: 'discard' }]);
      expect(step(r.record, { type: 'activate_requested' }).effects).toEqual([]); // terminal
    },
  );
});

describe('update state machine: rollback records', () => {
  const rollback = (): UpdateRecord => ({
    ...fresh(),
    commandId: 'rb1',
    kind: 'rollback',
    manifestText: '',
    artifactUrl: '',
    model: { name: 'm', version: 3 },
    reason: FLEET_REASON,
  });

  const rows: { name: string; script: Script; chain: UpdateState[]; reason: string; effects: string[] }[] = [
    {
      name: 'leaves the model and ends rolled_back with the fleet’s reason',
      script: {},
      chain: ['received', 'rolled_back'],
      reason: 'gate_failed',
      effects: ['leave', 'report'],
    },
    {
      name: 'no previous model: failed with that reason (the active model keeps serving)',
      script: { outcomes: { leave: fail('no_previous_model') } },
      chain: ['received', 'failed'],
      reason: 'no_previous_model',
      effects: ['leave', 'report'],
    },
    {
      name: 'crash before the switch is done: leaves it again after the restart',
      script: { crashIn: 'received' },
      chain: ['received', 'rolled_back'],
      reason: 'gate_failed',
      effects: ['leave', 'report'],
    },
    {
      name: 'crash loop (the previous model crashes the process): crash_loop',
      script: { crashIn: 'received', crashes: MAX_REENTRIES + 1 },
      chain: ['received', 'failed'],
      reason: 'crash_loop',
      effects: ['report'],
    },
  ];

  it.each(rows)('$name', ({ script, chain, reason, effects }) => {
    const result = run({ ...script, from: rollback() });
    expect(result.chain).toEqual(chain);
    expect(result.record.reason?.code).toBe(reason);
    // One report, of the outcome; a rollback record has nothing of its own to discard.
    expect(result.effects).toEqual(effects);
    expect(result.record.model).toEqual({ name: 'm', version: 3 });
  });

  it('install events do not apply to a rollback record', () => {
    const r = step(rollback(), { type: 'loaded', provider: 'cpu' });
    expect(r.record).toMatchObject({ state: 'failed', reason: { code: 'internal_error' } });
    expect(r.effects).toEqual([{ kind: 'report' }]);
  });

  it('a clean stop before the switch resumes without counting', () => {
    const r = step(
      { ...rollback(), stoppedCleanly: true, reentries: { received: 1 } },
      { type: 'recover', maxReentries: MAX_REENTRIES },
    );
    expect(r.record).toMatchObject({ state: 'received', reentries: { received: 1 }, stoppedCleanly: false });
    expect(r.effects).toEqual([{ kind: 'leave' }]);
  });

  it.each(['rolled_back', 'failed'] as const)('a finished rollback (%s) ignores everything', (state) => {
    const record = { ...rollback(), state };
    for (const event of [
      { type: 'start' },
      { type: 'left' },
      { type: 'recover', maxReentries: 3 },
    ] as UpdateEvent[]) {
      expect(step(record, event)).toEqual({ record, effects: [] });
    }
  });
});
