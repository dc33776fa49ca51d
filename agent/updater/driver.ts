/**
 * Runs the update machine: receives commands (install, activate, rollback), persists each record BEFORE executing the effects of
 * its new state, executes them one by one and feeds the resulting event back into `step`. Work runs one
 * piece at a time, in arrival order. On start, unfinished records are recovered from where they were persisted.
 * Commands are idempotent by id: a known id is re-reported once finished, never redone.
 *
 * `activate` switches a shadowing candidate in; it is decided on the install's state when its turn comes, so a
 * re-sent one finds the install already active and only re-reports it. `rollback` is persisted as its own
 * record (keyed by the command's id) before anything is touched, then leaves the model: an install still under
 * way is stopped at its next step boundary and discarded, as is a shadowing candidate; an active model is
 * switched back to the model in the other slot. The outcome is reported under the rollback's id.
 * An install that reaches `downloading` supersedes any shadowing candidate of the same model: it is about to
 * overwrite the slot that candidate was loaded from.
 */
import type { Logger } from 'pino';
import { ManifestSchema } from '../../shared/manifest.js';
import {
  type ActivateCommand,
  assertNever,
  type Command,
  type InstallCommand,
  type ModelRef,
  PROTOCOL_VERSION,
  type Reason,
  type RollbackCommand,
  type UpdateMessage,
  type UpdateState,
} from '../../shared/protocol/messages.js';
import type { ModelHost } from '../runtime/host.js';
import type { UpdateEffects } from './effects.js';
import {
  isRollback,
  isTerminal,
  step,
  type UpdateEffect,
  type UpdateEvent,
  type UpdateRecord,
} from './machine.js';

export interface UpdateStore {
  get(commandId: string): Promise<UpdateRecord | undefined>;
  put(record: UpdateRecord): Promise<void>;
  all(): Promise<UpdateRecord[]>;
}

export interface UpdateReporter {
  update(message: UpdateMessage): void;
}

export interface DriverOptions {
  store: UpdateStore;
  effects: UpdateEffects;
  host: ModelHost;
  reporter: UpdateReporter;
  maxReentries: number;
  log: Logger;
  newId: () => string;
  now: () => number;
  /** Crash-test hook: awaited after a record in that state is persisted (never resolves when armed). */
  afterPersist: (state: UpdateState) => Promise<void>;
}

export class UpdateDriver {
  private queue: Promise<void> = Promise.resolve();
  private intake: Promise<void> = Promise.resolve();
  private seq = 0;
  private stopping = false;
  /** Installs a persisted rollback is waiting to stop, by install command id → the rollback's reason. */
  private readonly cancels = new Map<string, Reason>();

  constructor(private readonly o: DriverOptions) {}

  /**
   * Stop between steps: the work under way finishes, its record is marked as stopped cleanly, and nothing
   * further starts. Commands arriving meanwhile are persisted for the next start. Waits at most `graceMs`
   * for the step under way; returns whether the driver reached a step boundary in time (if not, the record
   * stays as persisted and the next start counts it as a crash, which is what it is).
   */
  async stop(graceMs: number): Promise<boolean> {
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    });
    const idle = (async () => {
      await this.intake;
      await this.queue;
      return true as const;
    })();
    try {
      return await Promise.race([idle, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resume every unfinished record (installs and rollbacks), oldest first. Call once at start, before taking commands. */
  async recover(): Promise<void> {
    const records = await this.o.store.all();
    const unfinished = records.filter((r) => !isTerminal(r.state)).sort((a, b) => a.seq - b.seq);
    this.seq = Math.max(0, ...records.map((r) => r.seq));
    for (const record of unfinished) {
      if (isRollback(record)) await this.cancelInstallOf(record);
    }
    for (const record of unfinished) {
      this.o.log.info(
        { commandId: record.commandId, state: record.state, kind: record.kind },
        'recovering update',
      );
      this.enqueue(record, { type: 'recover', maxReentries: this.o.maxReentries });
    }
  }

  /**
   * Accept a command. Intake is serialized: the same command can arrive twice at once (the persistent
   * session's queued copy and the fleet's re-send on reconnect), and the second must find the first's record.
   */
  submit(command: Command): Promise<void> {
    const accepted = this.intake.then(() => {
      switch (command.type) {
        case 'install':
          return this.accept(command);
        case 'activate':
          return this.activate(command);
        case 'rollback':
          return this.rollback(command);
        default:
          return assertNever(command, 'command type');
      }
    });
    this.intake = accepted.catch(() => undefined);
    return accepted;
  }

  private async accept(command: InstallCommand): Promise<void> {
    const known = await this.o.store.get(command.id);
    if (known) {
      // Re-sent command (reconnect, fleet restart): say where it stands, do not redo it.
      if (isTerminal(known.state)) this.report(known);
      return;
    }
    const record: UpdateRecord = {
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
      seq: ++this.seq,
      kind: 'install',
      mode: command.mode,
      shadowPercent: command.shadowPercent,
    };
    if (this.stopping) {
      await this.o.store.put({ ...record, stoppedCleanly: true });
      return;
    }
    await this.o.store.put(record);
    this.enqueue(record, { type: 'start' });
  }

  /** The newest install record of `model` (the one a command about that version refers to). */
  private async latestInstallOf(model: ModelRef): Promise<UpdateRecord | undefined> {
    return (await this.o.store.all())
      .filter(
        (r) =>
          !isRollback(r) &&
          r.manifestText !== '' &&
          r.model.name === model.name &&
          r.model.version === model.version,
      )
      .sort((a, b) => b.seq - a.seq)[0];
  }

  /** Queued like any work, so it acts on the install's settled state (and a duplicate finds it switched). */
  private async activate(command: ActivateCommand): Promise<void> {
    this.queue = this.queue.then(() =>
      this.runActivate(command).catch((err) =>
        this.o.log.error({ err, commandId: command.id }, 'activate failed'),
      ),
    );
  }

  private async runActivate(command: ActivateCommand): Promise<void> {
    const record = await this.latestInstallOf(command.model);
    const about = { commandId: command.id, model: command.model };
    if (!record) {
      this.o.log.warn(about, 'activate ignored: this model version was never installed here');
    } else if (record.state === 'shadowing') {
      await this.run(record, { type: 'activate_requested' });
    } else if (isTerminal(record.state)) {
      this.report(record); // re-sent activate (or one for an install that ended): say where it stands
    } else {
      // Still installing: the fleet sends activate only to shadowing devices and re-sends it until it hears back.
      this.o.log.info(
        { ...about, state: record.state },
        'activate ignored: the install is not shadowing yet',
      );
    }
  }

  private async rollback(command: RollbackCommand): Promise<void> {
    const known = await this.o.store.get(command.id);
    if (known) {
      // Re-sent: report how it ended; one still under way reports when it ends.
      if (isTerminal(known.state)) this.report(known);
      return;
    }
    const record: UpdateRecord = {
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
      seq: ++this.seq,
      kind: 'rollback',
    };
    if (this.stopping) {
      await this.o.store.put({ ...record, stoppedCleanly: true });
      return;
    }
    await this.o.store.put(record); // persisted before any install is stopped or any slot switched
    await this.cancelInstallOf(record);
    this.enqueue(record, { type: 'start' });
  }

  /** An install of the rollback's model still under way stops at its next step boundary instead of going on. */
  private async cancelInstallOf(rollback: UpdateRecord): Promise<void> {
    const install = await this.latestInstallOf(rollback.model);
    if (install && !isTerminal(install.state)) {
      this.cancels.set(install.commandId, rollback.reason ?? ROLLBACK_REASON);
    }
  }

  /** A rollback's work: discard the install of its model if unfinished, else leave the model if active. */
  private async leave(rollback: UpdateRecord): Promise<UpdateEvent> {
    const install = await this.latestInstallOf(rollback.model);
    if (install && !isTerminal(install.state)) {
      await this.run(install, { type: 'rollback_requested', reason: rollback.reason ?? ROLLBACK_REASON });
      return { type: 'left' };
    }
    const outcome = await this.o.effects.rollbackActive(rollback.model);
    if (!outcome.ok) return { type: 'failed', reason: outcome.reason };
    if (!outcome.switched) {
      this.o.log.info(
        { commandId: rollback.commandId, model: rollback.model },
        'rollback: this model version is neither installing nor active here; nothing to leave',
      );
    }
    return { type: 'left' };
  }

  /** Other installs of the same model waiting in `shadowing` end: this one is about to overwrite their slot. */
  private async supersedeShadows(record: UpdateRecord): Promise<void> {
    const waiting = (await this.o.store.all()).filter(
      (r) =>
        !isRollback(r) &&
        r.commandId !== record.commandId &&
        r.state === 'shadowing' &&
        r.model.name === record.model.name,
    );
    for (const shadowing of waiting) {
      await this.run(shadowing, {
        type: 'failed',
        reason: {
          code: 'superseded',
          message: `a newer install of ${record.model.name} (v${record.model.version}, command ${record.commandId}) replaced this candidate`,
        },
      });
    }
  }

  /** Resolves when every queued update has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue;
  }

  private enqueue(record: UpdateRecord, first: UpdateEvent): void {
    this.queue = this.queue.then(() =>
      this.run(record, first).catch((err) =>
        this.o.log.error({ err, commandId: record.commandId }, 'update driver failed'),
      ),
    );
  }

  private async run(initial: UpdateRecord, first: UpdateEvent): Promise<void> {
    let record = initial;
    let event: UpdateEvent | null = first;
    while (event) {
      if (this.stopping) {
        // The event in hand is dropped: the persisted state's work is redone on the next start.
        await this.o.store.put({ ...record, stoppedCleanly: true });
        return;
      }
      // A rollback arrived for this install: it goes no further than the step it finished.
      const cancel = this.cancels.get(record.commandId);
      if (cancel && !isTerminal(record.state)) event = { type: 'rollback_requested', reason: cancel };
      const result = step(record, event);
      if (result.record !== record) {
        record = result.record;
        await this.o.store.put(record); // persisted before any effect of the new state
        await this.o.afterPersist(record.state);
      }
      event = null;
      for (const effect of result.effects) {
        const next = await this.execute(effect, record);
        if (next) event = next;
      }
    }
    if (isTerminal(record.state)) this.cancels.delete(record.commandId);
  }

  private async execute(effect: UpdateEffect, record: UpdateRecord): Promise<UpdateEvent | null> {
    const fx = this.o.effects;
    switch (effect.kind) {
      case 'report':
        this.report(record);
        return null;
      case 'verify_manifest':
        return fx.verifyManifest(record);
      case 'download':
        await this.supersedeShadows(record);
        return fx.download(record);
      case 'verify_and_stage':
        return fx.verifyAndStage(record);
      case 'continue':
        return { type: 'continue' };
      case 'load_and_selftest':
        return fx.loadAndSelfTest(record);
      case 'activate':
        return fx.activate(record);
      case 'start_shadow':
        return fx.startShadow(record);
      case 'leave':
        return this.leave(record);
      case 'discard':
        await fx.discard(record);
        return null;
      default:
        return assertNever(effect, 'update effect');
    }
  }

  private report(record: UpdateRecord): void {
    const serving = this.o.host.get(record.model.name);
    this.o.reporter.update({
      v: PROTOCOL_VERSION,
      type: 'update',
      id: this.o.newId(),
      ts: this.o.now(),
      commandId: record.commandId,
      rolloutId: record.rolloutId,
      model: record.model,
      state: record.state,
      reason: record.reason,
      executionProvider: record.executionProvider,
      serving: serving ? { name: serving.name, version: serving.version } : null,
    });
    const level = record.state === 'failed' ? 'warn' : 'info';
    this.o.log[level](
      {
        commandId: record.commandId,
        kind: record.kind ?? 'install',
        model: record.model,
        state: record.state,
        reason: record.reason,
      },
      'update',
    );
  }
}

/** For rollback records persisted without a reason (none are; the command's reason is required). */
const ROLLBACK_REASON: Reason = { code: 'rollback', message: 'rollback requested by the fleet' };

/** Name and version for reports before the manifest is verified (unverified; never used to decide anything). */
function guessModel(manifestText: string): { name: string; version: number } {
  try {
    const parsed = ManifestSchema.pick({ name: true, version: true }).safeParse(JSON.parse(manifestText));
    if (parsed.success) return parsed.data;
  } catch {
    // fall through
  }
  return { name: 'unknown', version: 1 };
}
