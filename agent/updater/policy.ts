/**
 * The updater's rules across records, pure: given the persisted update records and what just happened (a
 * command arrived, an activate's turn came, the agent restarted, a rollback's work began, an install is about
 * to download, a step is about to run), `decide` says what is to happen — as a value the driver (driver.ts)
 * carries out. `machine.ts` steps ONE record; this module decides which records step, with which event, and
 * which records are created. No I/O, no clock, no ORT; tested one row per rule in test/unit/agent/updater.
 *
 * The rules:
 *  - Commands are idempotent by id: a known id is re-reported once finished, else left to finish; never redone.
 *  - A new install or rollback is a new record, persisted before anything acts on it (`start`); while the
 *    agent stops it is persisted as stopped cleanly, for the next start (`park`).
 *  - A rollback cancels an unfinished install of its model: that install goes no further than the step it is
 *    in (`cancel`; the driver turns that install's next event into `rollback_requested`).
 *  - A rollback's own work: discard the unfinished install of its model, else switch the active model back.
 *  - `activate` is decided on the install's settled state when its turn comes: a shadowing install is switched
 *    in; one that ended is re-reported (a re-sent activate); one still installing, or none, is left alone.
 *  - An install about to download supersedes every other install of the same model waiting in `shadowing`:
 *    the download is about to overwrite the slot those candidates were loaded from.
 *  - After a restart, unfinished records resume oldest first, and each unfinished rollback cancels its
 *    install again (the cancel was in memory only) before anything resumes.
 */
import { ManifestSchema } from '../../shared/manifest.js';
import type {
  ActivateCommand,
  InstallCommand,
  ModelRef,
  Reason,
  RollbackCommand,
} from '../../shared/protocol/messages.js';
import { isRollback, isTerminal, type UpdateEvent, type UpdateRecord } from './machine.js';

/** What the driver is deciding about. */
export type PolicyInput =
  /** An install or rollback command arrived (`seq`: the order of arrival the new record would get). */
  | { on: 'command'; command: InstallCommand | RollbackCommand; seq: number; stopping: boolean }
  /** An activate command's turn came in the work queue. */
  | { on: 'activate'; command: ActivateCommand }
  /** The agent started: what to resume. */
  | { on: 'recover' }
  /** A rollback record's work (`leave`) is starting. */
  | { on: 'leave'; rollback: UpdateRecord }
  /** An install is entering its download. */
  | { on: 'download'; install: UpdateRecord }
  /** `event` is about to be stepped into `record`; `cancel`: the reason of a rollback waiting to stop it. */
  | { on: 'step'; record: UpdateRecord; event: UpdateEvent; cancel: Reason | undefined };

/** A rollback waiting to stop an unfinished install at its next step boundary. */
export interface Cancel {
  installId: string;
  reason: Reason;
}

/** One event for one record, to be run through the machine (and persisted) by the driver. */
export interface Step {
  record: UpdateRecord;
  event: UpdateEvent;
}

export type Decision =
  /** Say where this record stands (a re-sent command, or an activate for an install that ended). */
  | { do: 'report'; record: UpdateRecord }
  /** Nothing to do; `log`, when set, says why. */
  | { do: 'ignore'; log: { level: 'info' | 'warn'; message: string } | null }
  /** Persist `record` and do nothing more now: the next start picks it up. */
  | { do: 'park'; record: UpdateRecord }
  /** Persist `record`, then register `cancel` (if any), then start it. */
  | { do: 'start'; record: UpdateRecord; cancel: Cancel | null }
  /** After a restart: continue numbering from `seq`, register `cancels`, then resume `records` in this order. */
  | { do: 'resume'; seq: number; cancels: Cancel[]; records: UpdateRecord[] }
  /** Run these steps, in order. */
  | { do: 'run'; steps: Step[] }
  /** Switch the active model back to the other slot, if `model` is the active one. */
  | { do: 'leave_active'; model: ModelRef };

/** Decide what is to happen. A `step` input always decides one `run` step: the event to step in. */
export function decide(
  records: readonly UpdateRecord[],
  input: Extract<PolicyInput, { on: 'step' }>,
): Extract<Decision, { do: 'run' }>;
export function decide(records: readonly UpdateRecord[], input: PolicyInput): Decision;
export function decide(records: readonly UpdateRecord[], input: PolicyInput): Decision {
  switch (input.on) {
    case 'command':
      return admit(records, input.command, input.seq, input.stopping);
    case 'activate':
      return routeActivate(records, input.command);
    case 'recover':
      return resume(records);
    case 'leave':
      return leave(records, input.rollback);
    case 'download':
      return { do: 'run', steps: supersededBy(records, input.install) };
    case 'step':
      return { do: 'run', steps: [{ record: input.record, event: cancelled(input) }] };
  }
}

function admit(
  records: readonly UpdateRecord[],
  command: InstallCommand | RollbackCommand,
  seq: number,
  stopping: boolean,
): Decision {
  const known = records.find((r) => r.commandId === command.id);
  if (known) {
    // Re-sent command (reconnect, fleet restart): say where it stands once finished; never redo it.
    return isTerminal(known.state) ? { do: 'report', record: known } : { do: 'ignore', log: null };
  }
  const record = command.type === 'install' ? installRecord(command, seq) : rollbackRecord(command, seq);
  if (stopping) return { do: 'park', record: { ...record, stoppedCleanly: true } };
  return { do: 'start', record, cancel: isRollback(record) ? cancelOf(records, record) : null };
}

function routeActivate(records: readonly UpdateRecord[], command: ActivateCommand): Decision {
  const install = latestInstallOf(records, command.model);
  if (!install) {
    return {
      do: 'ignore',
      log: { level: 'warn', message: 'activate ignored: this model version was never installed here' },
    };
  }
  if (install.state === 'shadowing') {
    return { do: 'run', steps: [{ record: install, event: { type: 'activate_requested' } }] };
  }
  // A re-sent activate, or one for an install that ended: say where it stands.
  if (isTerminal(install.state)) return { do: 'report', record: install };
  // Still installing: the fleet sends activate only to shadowing devices and re-sends it until it hears back.
  return {
    do: 'ignore',
    log: { level: 'info', message: `activate ignored: the install is not shadowing yet (${install.state})` },
  };
}

function resume(records: readonly UpdateRecord[]): Decision {
  const unfinished = records.filter((r) => !isTerminal(r.state)).sort((a, b) => a.seq - b.seq);
  const cancels = unfinished.filter(isRollback).flatMap((rollback) => cancelOf(records, rollback) ?? []);
  return { do: 'resume', seq: Math.max(0, ...records.map((r) => r.seq)), cancels, records: unfinished };
}

function leave(records: readonly UpdateRecord[], rollback: UpdateRecord): Decision {
  const install = latestInstallOf(records, rollback.model);
  if (install && !isTerminal(install.state)) {
    return {
      do: 'run',
      steps: [{ record: install, event: { type: 'rollback_requested', reason: reasonOf(rollback) } }],
    };
  }
  return { do: 'leave_active', model: rollback.model };
}

/** Other installs of the same model waiting in `shadowing` end: `install` is about to overwrite their slot. */
function supersededBy(records: readonly UpdateRecord[], install: UpdateRecord): Step[] {
  return records
    .filter(
      (r) =>
        !isRollback(r) &&
        r.commandId !== install.commandId &&
        r.state === 'shadowing' &&
        r.model.name === install.model.name,
    )
    .sort((a, b) => a.seq - b.seq)
    .map((shadowing) => ({
      record: shadowing,
      event: {
        type: 'failed',
        reason: {
          code: 'superseded',
          message: `a newer install of ${install.model.name} (v${install.model.version}, command ${install.commandId}) replaced this candidate`,
        },
      },
    }));
}

/** A rollback arrived for this install: it goes no further than the step it finished. */
function cancelled(input: {
  record: UpdateRecord;
  event: UpdateEvent;
  cancel: Reason | undefined;
}): UpdateEvent {
  if (!input.cancel || isTerminal(input.record.state)) return input.event;
  return { type: 'rollback_requested', reason: input.cancel };
}

/** The unfinished install of the rollback's model, which the rollback stops. */
function cancelOf(records: readonly UpdateRecord[], rollback: UpdateRecord): Cancel | null {
  const install = latestInstallOf(records, rollback.model);
  if (!install || isTerminal(install.state)) return null;
  return { installId: install.commandId, reason: reasonOf(rollback) };
}

/** The newest install record of `model` (the one a command about that version refers to). */
export function latestInstallOf(records: readonly UpdateRecord[], model: ModelRef): UpdateRecord | undefined {
  let latest: UpdateRecord | undefined;
  for (const r of records) {
    // `manifestText` tells rollback records of agents that did not write `kind` from installs.
    if (isRollback(r) || r.manifestText === '') continue;
    if (r.model.name !== model.name || r.model.version !== model.version) continue;
    if (!latest || r.seq > latest.seq) latest = r;
  }
  return latest;
}

function installRecord(command: InstallCommand, seq: number): UpdateRecord {
  return {
    commandId: command.id,
    rolloutId: command.rolloutId,
    manifestText: command.manifest,
    artifactUrl: command.artifactUrl,
    model: guessModel(command.manifest),
    sha256: null,
    slot: null,
    state: 'received',
    reason: null,
    executionProvider: null,
    reentries: {},
    seq,
    kind: 'install',
    mode: command.mode,
    shadowPercent: command.shadowPercent,
  };
}

function rollbackRecord(command: RollbackCommand, seq: number): UpdateRecord {
  return {
    commandId: command.id,
    rolloutId: command.rolloutId,
    manifestText: '',
    artifactUrl: '',
    model: command.model,
    sha256: null,
    slot: null,
    state: 'received',
    reason: command.reason,
    executionProvider: null,
    reentries: {},
    seq,
    kind: 'rollback',
  };
}

/** For rollback records persisted without a reason (none are; the command's reason is required). */
const ROLLBACK_REASON: Reason = { code: 'rollback', message: 'rollback requested by the fleet' };

function reasonOf(rollback: UpdateRecord): Reason {
  return rollback.reason ?? ROLLBACK_REASON;
}

/** Name and version for reports before the manifest is verified (unverified; never used to decide anything). */
function guessModel(manifestText: string): ModelRef {
  try {
    const parsed = ManifestSchema.pick({ name: true, version: true }).safeParse(JSON.parse(manifestText));
    if (parsed.success) return parsed.data;
  } catch {
    // fall through
  }
  return { name: 'unknown', version: 1 };
}
