/**
 * The updater's cross-record rules (policy.ts), one row per rule: the persisted records, what happens, and
 * what the policy decides. The "crash" rows are records as a crash or a re-delivery leaves them: a command
 * arriving again for a record persisted before the crash, a rollback persisted but not yet acted on, an
 * install that ended while its rollback had not.
 */
import { describe, expect, it } from 'vitest';
import type { UpdateRecord } from '../../../../agent/updater/machine.js';
import { type Decision, decide, type PolicyInput } from '../../../../agent/updater/policy.js';
import {
  type ActivateCommand,
  type InstallCommand,
  PROTOCOL_VERSION,
  type Reason,
  type RollbackCommand,
  type UpdateState,
} from '../../../../shared/protocol/messages.js';

const REASON: Reason = { code: 'gate_failed', message: 'p95_latency_ratio 3 not <= 1.2' };

function install(
  id: string,
  state: UpdateState,
  seq: number,
  over: Partial<UpdateRecord> = {},
): UpdateRecord {
  return {
    commandId: id,
    rolloutId: `r-${id}`,
    manifestText: JSON.stringify({ name: 'm', version: 2 }),
    artifactUrl: 'http://fleet.invalid/a',
    model: { name: 'm', version: 2 },
    sha256: 'ab'.repeat(32),
    slot: 'b',
    state,
    reason: null,
    executionProvider: null,
    reentries: {},
    seq,
    kind: 'install',
    mode: 'activate',
    ...over,
  };
}

function rollbackRecord(
  id: string,
  state: UpdateState,
  seq: number,
  over: Partial<UpdateRecord> = {},
): UpdateRecord {
  return install(id, state, seq, {
    kind: 'rollback',
    manifestText: '',
    artifactUrl: '',
    sha256: null,
    slot: null,
    reason: REASON,
    mode: undefined,
    ...over,
  });
}

function installCommand(id: string, over: Partial<InstallCommand> = {}): InstallCommand {
  return {
    v: PROTOCOL_VERSION,
    type: 'install',
    id,
    ts: 1,
    rolloutId: `r-${id}`,
    manifest: JSON.stringify({ name: 'm', version: 2 }),
    artifactUrl: 'http://fleet.invalid/a',
    mode: 'activate',
    shadowPercent: 100,
    ...over,
  };
}

function rollbackCommand(id: string, version = 2): RollbackCommand {
  return {
    v: PROTOCOL_VERSION,
    type: 'rollback',
    id,
    ts: 1,
    rolloutId: 'r',
    model: { name: 'm', version },
    reason: REASON,
  };
}

function activateCommand(id: string, version = 2): ActivateCommand {
  return { v: PROTOCOL_VERSION, type: 'activate', id, ts: 1, rolloutId: 'r', model: { name: 'm', version } };
}

/** The record a new command becomes (as the driver persists it). */
const NEW_INSTALL = {
  commandId: 'c9',
  rolloutId: 'r-c9',
  manifestText: JSON.stringify({ name: 'm', version: 2 }),
  artifactUrl: 'http://fleet.invalid/a',
  model: { name: 'm', version: 2 },
  sha256: null,
  slot: null,
  state: 'received',
  reason: null,
  executionProvider: null,
  reentries: {},
  seq: 7,
  kind: 'install',
  mode: 'activate',
  shadowPercent: 100,
} satisfies UpdateRecord;
const NEW_ROLLBACK = {
  commandId: 'rb9',
  rolloutId: 'r',
  manifestText: '',
  artifactUrl: '',
  model: { name: 'm', version: 2 },
  sha256: null,
  slot: null,
  state: 'received',
  reason: REASON,
  executionProvider: null,
  reentries: {},
  seq: 7,
  kind: 'rollback',
} satisfies UpdateRecord;

const superseded = (by: string, version: number) => ({
  type: 'failed' as const,
  reason: {
    code: 'superseded',
    message: `a newer install of m (v${version}, command ${by}) replaced this candidate`,
  },
});

interface Row {
  rule: string;
  records: UpdateRecord[];
  input: PolicyInput;
  expected: Decision;
}

const command = (cmd: InstallCommand | RollbackCommand, stopping = false): PolicyInput => ({
  on: 'command',
  command: cmd,
  seq: 7,
  stopping,
});

const ROWS: Row[] = [
  // ---- intake: idempotent by id ------------------------------------------------------------------
  {
    rule: 'a new install becomes a received record, started',
    records: [install('c1', 'active', 1)],
    input: command(installCommand('c9')),
    expected: { do: 'start', record: NEW_INSTALL, cancel: null },
  },
  {
    rule: 'a shadow install keeps its mode and share',
    records: [],
    input: command(installCommand('c9', { mode: 'shadow', shadowPercent: 25 })),
    expected: { do: 'start', record: { ...NEW_INSTALL, mode: 'shadow', shadowPercent: 25 }, cancel: null },
  },
  {
    rule: 'an install whose manifest does not parse is reported as unknown until verified',
    records: [],
    input: command(installCommand('c9', { manifest: '{not json' })),
    expected: {
      do: 'start',
      record: { ...NEW_INSTALL, manifestText: '{not json', model: { name: 'unknown', version: 1 } },
      cancel: null,
    },
  },
  {
    rule: 'an install arriving while the agent stops is persisted, stopped cleanly, for the next start',
    records: [],
    input: command(installCommand('c9'), true),
    expected: { do: 'park', record: { ...NEW_INSTALL, stoppedCleanly: true } },
  },
  {
    rule: 'crash/re-delivery: an install command whose record finished is re-reported, not redone',
    records: [install('c1', 'active', 1)],
    input: command(installCommand('c1')),
    expected: { do: 'report', record: install('c1', 'active', 1) },
  },
  {
    rule: 'crash/re-delivery: a failed install is re-reported with its reason',
    records: [install('c1', 'failed', 1, { reason: REASON })],
    input: command(installCommand('c1')),
    expected: { do: 'report', record: install('c1', 'failed', 1, { reason: REASON }) },
  },
  {
    rule: 'crash/re-delivery: an install command whose record is still under way is left to finish',
    records: [install('c1', 'downloading', 1)],
    input: command(installCommand('c1')),
    expected: { do: 'ignore', log: null },
  },
  // ---- a rollback cancels the install under way --------------------------------------------------
  {
    rule: 'a rollback cancels the unfinished install of its model',
    records: [install('c1', 'downloading', 1)],
    input: command(rollbackCommand('rb9')),
    expected: { do: 'start', record: NEW_ROLLBACK, cancel: { installId: 'c1', reason: REASON } },
  },
  {
    rule: 'a rollback cancels a shadowing candidate of its model',
    records: [install('c1', 'shadowing', 1, { mode: 'shadow' })],
    input: command(rollbackCommand('rb9')),
    expected: { do: 'start', record: NEW_ROLLBACK, cancel: { installId: 'c1', reason: REASON } },
  },
  {
    rule: 'a rollback of an active model cancels nothing (its work switches back)',
    records: [install('c1', 'active', 1)],
    input: command(rollbackCommand('rb9')),
    expected: { do: 'start', record: NEW_ROLLBACK, cancel: null },
  },
  {
    rule: 'a rollback acts on the newest install of its version only',
    records: [install('c1', 'downloading', 1), install('c2', 'active', 2)],
    input: command(rollbackCommand('rb9')),
    expected: { do: 'start', record: NEW_ROLLBACK, cancel: null },
  },
  {
    rule: 'a rollback of another version leaves an install of this one alone',
    records: [install('c1', 'downloading', 1)],
    input: command(rollbackCommand('rb9', 3)),
    expected: { do: 'start', record: { ...NEW_ROLLBACK, model: { name: 'm', version: 3 } }, cancel: null },
  },
  {
    rule: 'a rollback arriving while the agent stops is persisted for the next start, cancelling nothing yet',
    records: [install('c1', 'downloading', 1)],
    input: command(rollbackCommand('rb9'), true),
    expected: { do: 'park', record: { ...NEW_ROLLBACK, stoppedCleanly: true } },
  },
  {
    rule: 'crash/re-delivery: a finished rollback is re-reported',
    records: [install('c1', 'rolled_back', 1), rollbackRecord('rb1', 'rolled_back', 2)],
    input: command(rollbackCommand('rb1')),
    expected: { do: 'report', record: rollbackRecord('rb1', 'rolled_back', 2) },
  },
  {
    rule: 'crash/re-delivery: a rollback still under way is left to finish (it reports when it ends)',
    records: [install('c1', 'downloading', 1), rollbackRecord('rb1', 'received', 2)],
    input: command(rollbackCommand('rb1')),
    expected: { do: 'ignore', log: null },
  },
  // ---- activate routing --------------------------------------------------------------------------
  {
    rule: 'activate switches in a shadowing install of that version',
    records: [install('c1', 'shadowing', 1, { mode: 'shadow' })],
    input: { on: 'activate', command: activateCommand('a1') },
    expected: {
      do: 'run',
      steps: [
        { record: install('c1', 'shadowing', 1, { mode: 'shadow' }), event: { type: 'activate_requested' } },
      ],
    },
  },
  {
    rule: 'crash/re-delivery: an activate for an install already switched in re-reports it',
    records: [install('c1', 'active', 1, { mode: 'shadow' })],
    input: { on: 'activate', command: activateCommand('a1') },
    expected: { do: 'report', record: install('c1', 'active', 1, { mode: 'shadow' }) },
  },
  {
    rule: 'an activate for an install that ended otherwise re-reports how it ended',
    records: [install('c1', 'rolled_back', 1, { mode: 'shadow', reason: REASON })],
    input: { on: 'activate', command: activateCommand('a1') },
    expected: { do: 'report', record: install('c1', 'rolled_back', 1, { mode: 'shadow', reason: REASON }) },
  },
  {
    rule: 'an activate for an install not yet shadowing is left alone (the fleet re-sends it)',
    records: [install('c1', 'loading', 1, { mode: 'shadow' })],
    input: { on: 'activate', command: activateCommand('a1') },
    expected: {
      do: 'ignore',
      log: { level: 'info', message: 'activate ignored: the install is not shadowing yet (loading)' },
    },
  },
  {
    rule: 'an activate for a version never installed here changes nothing',
    records: [install('c1', 'shadowing', 1, { mode: 'shadow' })],
    input: { on: 'activate', command: activateCommand('a1', 9) },
    expected: {
      do: 'ignore',
      log: { level: 'warn', message: 'activate ignored: this model version was never installed here' },
    },
  },
  {
    rule: 'rollback records are no installs, also those of agents that wrote no kind',
    records: [
      rollbackRecord('rb1', 'rolled_back', 1),
      rollbackRecord('rb2', 'received', 2, { kind: undefined }),
    ],
    input: { on: 'activate', command: activateCommand('a1') },
    expected: {
      do: 'ignore',
      log: { level: 'warn', message: 'activate ignored: this model version was never installed here' },
    },
  },
  // ---- recovery after a restart ------------------------------------------------------------------
  {
    rule: 'crash: unfinished records resume oldest first; finished ones stay; numbering goes on after all',
    records: [
      install('c3', 'loading', 3),
      install('c1', 'active', 1),
      install('c2', 'verifying', 2),
      install('c4', 'failed', 4),
    ],
    input: { on: 'recover' },
    expected: {
      do: 'resume',
      seq: 4,
      cancels: [],
      records: [install('c2', 'verifying', 2), install('c3', 'loading', 3)],
    },
  },
  {
    rule: 'crash after a rollback was persisted: it cancels its install again before anything resumes',
    records: [install('c1', 'downloading', 1), rollbackRecord('rb1', 'received', 2)],
    input: { on: 'recover' },
    expected: {
      do: 'resume',
      seq: 2,
      cancels: [{ installId: 'c1', reason: REASON }],
      records: [install('c1', 'downloading', 1), rollbackRecord('rb1', 'received', 2)],
    },
  },
  {
    rule: 'crash after the install was rolled back but before its rollback ended: only the rollback resumes',
    records: [install('c1', 'rolled_back', 1, { reason: REASON }), rollbackRecord('rb1', 'received', 2)],
    input: { on: 'recover' },
    expected: { do: 'resume', seq: 2, cancels: [], records: [rollbackRecord('rb1', 'received', 2)] },
  },
  {
    rule: 'a first start resumes nothing',
    records: [],
    input: { on: 'recover' },
    expected: { do: 'resume', seq: 0, cancels: [], records: [] },
  },
  // ---- a rollback's work ---------------------------------------------------------------------------
  {
    rule: 'a rollback discards the unfinished install of its model',
    records: [install('c1', 'staged', 1), rollbackRecord('rb1', 'received', 2)],
    input: { on: 'leave', rollback: rollbackRecord('rb1', 'received', 2) },
    expected: {
      do: 'run',
      steps: [{ record: install('c1', 'staged', 1), event: { type: 'rollback_requested', reason: REASON } }],
    },
  },
  {
    rule: 'a rollback persisted without a reason discards with the default one',
    records: [install('c1', 'shadowing', 1)],
    input: { on: 'leave', rollback: rollbackRecord('rb1', 'received', 2, { reason: null }) },
    expected: {
      do: 'run',
      steps: [
        {
          record: install('c1', 'shadowing', 1),
          event: {
            type: 'rollback_requested',
            reason: { code: 'rollback', message: 'rollback requested by the fleet' },
          },
        },
      ],
    },
  },
  {
    rule: 'a rollback of a finished install leaves the active model (the effect checks it is the active one)',
    records: [install('c1', 'active', 1), rollbackRecord('rb1', 'received', 2)],
    input: { on: 'leave', rollback: rollbackRecord('rb1', 'received', 2) },
    expected: { do: 'leave_active', model: { name: 'm', version: 2 } },
  },
  {
    rule: 'a rollback of a version never installed here still asks to leave it (served from disk, say)',
    records: [rollbackRecord('rb1', 'received', 2)],
    input: { on: 'leave', rollback: rollbackRecord('rb1', 'received', 2) },
    expected: { do: 'leave_active', model: { name: 'm', version: 2 } },
  },
  // ---- a newer install supersedes shadowing candidates -------------------------------------------
  {
    rule: 'an install about to download ends every other shadowing candidate of its model, oldest first',
    records: [
      install('c2', 'shadowing', 2, { mode: 'shadow' }),
      install('c1', 'shadowing', 1, { mode: 'shadow', model: { name: 'm', version: 1 } }),
      install('c3', 'downloading', 3, { model: { name: 'm', version: 3 } }),
    ],
    input: { on: 'download', install: install('c3', 'downloading', 3, { model: { name: 'm', version: 3 } }) },
    expected: {
      do: 'run',
      steps: [
        {
          record: install('c1', 'shadowing', 1, { mode: 'shadow', model: { name: 'm', version: 1 } }),
          event: superseded('c3', 3),
        },
        { record: install('c2', 'shadowing', 2, { mode: 'shadow' }), event: superseded('c3', 3) },
      ],
    },
  },
  {
    rule: 'a download supersedes no candidate of another model, none not shadowing, and never itself',
    records: [
      install('c1', 'shadowing', 1, { mode: 'shadow', model: { name: 'other', version: 2 } }),
      install('c2', 'active', 2),
      install('c3', 'downloading', 3, { model: { name: 'm', version: 3 } }),
    ],
    input: { on: 'download', install: install('c3', 'downloading', 3, { model: { name: 'm', version: 3 } }) },
    expected: { do: 'run', steps: [] },
  },
  {
    rule: 'crash: a download resumed after a restart still supersedes the candidate that shadows',
    records: [
      install('c1', 'shadowing', 1, { mode: 'shadow' }),
      install('c3', 'downloading', 3, { model: { name: 'm', version: 3 }, reentries: { downloading: 1 } }),
    ],
    input: {
      on: 'download',
      install: install('c3', 'downloading', 3, {
        model: { name: 'm', version: 3 },
        reentries: { downloading: 1 },
      }),
    },
    expected: {
      do: 'run',
      steps: [{ record: install('c1', 'shadowing', 1, { mode: 'shadow' }), event: superseded('c3', 3) }],
    },
  },
  // ---- a pending cancel at the next step boundary ------------------------------------------------
  {
    rule: 'a cancelled install goes no further: its next event becomes rollback_requested',
    records: [],
    input: {
      on: 'step',
      record: install('c1', 'downloading', 1),
      event: { type: 'downloaded' },
      cancel: REASON,
    },
    expected: {
      do: 'run',
      steps: [
        { record: install('c1', 'downloading', 1), event: { type: 'rollback_requested', reason: REASON } },
      ],
    },
  },
  {
    rule: 'a cancel for an install that ended meanwhile changes nothing',
    records: [],
    input: { on: 'step', record: install('c1', 'failed', 1), event: { type: 'downloaded' }, cancel: REASON },
    expected: { do: 'run', steps: [{ record: install('c1', 'failed', 1), event: { type: 'downloaded' } }] },
  },
  {
    rule: 'without a cancel the event steps in as it is',
    records: [],
    input: {
      on: 'step',
      record: install('c1', 'loading', 1),
      event: { type: 'loaded', provider: 'cpu' },
      cancel: undefined,
    },
    expected: {
      do: 'run',
      steps: [{ record: install('c1', 'loading', 1), event: { type: 'loaded', provider: 'cpu' } }],
    },
  },
];

describe('updater policy', () => {
  it.each(ROWS)('$rule', ({ records, input, expected }) => {
    const before = structuredClone(records);
    expect(decide(records, input)).toEqual(expected);
    // Pure: the records it was given are as they were.
    expect(records).toEqual(before);
  });

  it('every kind of input has a row, and every kind of decision is reached', () => {
    const inputs = new Set(ROWS.map((r) => r.input.on));
    const decisions = new Set(ROWS.map((r) => r.expected.do));
    expect([...inputs].sort()).toEqual(['activate', 'command', 'download', 'leave', 'recover', 'step']);
    expect([...decisions].sort()).toEqual([
      'ignore',
      'leave_active',
      'park',
      'report',
      'resume',
      'run',
      'start',
    ]);
  });
});
