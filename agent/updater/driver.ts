/**
 * Runs the update machine: receives commands (install, activate, rollback), persists each record BEFORE executing the effects of
 * its new state, executes them one by one and feeds the resulting event back into `step`. Updates run one at
 * a time, in arrival order. On start, unfinished records are recovered from where they were persisted.
 * Commands are idempotent by id: a known id is re-reported, never redone.
 *
 * `activate` switches a shadowing candidate in. `rollback` leaves a model: a candidate still installing or
 * shadowing is discarded; an active one is switched back to the model in the other slot. A rollback is
 * recorded under its own command id once done (so a re-sent one is re-reported) and reported with that id.
 */
import type { Logger } from 'pino';
import { ManifestSchema } from '../../shared/manifest.js';
import {
  type ActivateCommand,
  type Command,
  type InstallCommand,
  PROTOCOL_VERSION,
  type RollbackCommand,
  type UpdateMessage,
  type UpdateState,
} from '../../shared/protocol/messages.js';
import type { ModelHost } from '../runtime/host.js';
import type { UpdateEffects } from './effects.js';
import { isTerminal, step, type UpdateEffect, type UpdateEvent, type UpdateRecord } from './machine.js';

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

  /** Resume every unfinished update, oldest first. Call once at start, before taking commands. */
  async recover(): Promise<void> {
    const unfinished = (await this.o.store.all())
      .filter((r) => !isTerminal(r.state))
      .sort((a, b) => a.seq - b.seq);
    this.seq = Math.max(0, ...(await this.o.store.all()).map((r) => r.seq));
    for (const record of unfinished) {
      this.o.log.info({ commandId: record.commandId, state: record.state }, 'recovering update');
      this.enqueue(record, { type: 'recover', maxReentries: this.o.maxReentries });
    }
  }

  /**
   * Accept an install command. Intake is serialized: the same command can arrive twice at once (the persistent
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
  private async latestOf(model: { name: string; version: number }): Promise<UpdateRecord | undefined> {
    return (await this.o.store.all())
      .filter(
        (r) => r.manifestText !== '' && r.model.name === model.name && r.model.version === model.version,
      )
      .sort((a, b) => b.seq - a.seq)[0];
  }

  private async activate(command: ActivateCommand): Promise<void> {
    const record = await this.latestOf(command.model);
    if (!record) {
      this.o.log.warn(
        { commandId: command.id, model: command.model },
        'activate for a model never installed here',
      );
      return;
    }
    if (record.state === 'shadowing') this.enqueue(record, { type: 'activate_requested' });
    else if (isTerminal(record.state)) this.report(record); // re-sent activate: say where it stands
    // Still installing: it reaches shadowing later; the fleet re-sends the activate until it hears back.
  }

  private async rollback(command: RollbackCommand): Promise<void> {
    const known = await this.o.store.get(command.id);
    if (known) {
      this.report(known);
      return;
    }
    // Queued behind the update under way, so it acts on settled state.
    this.queue = this.queue.then(() =>
      this.runRollback(command).catch((err) =>
        this.o.log.error({ err, commandId: command.id }, 'rollback failed'),
      ),
    );
  }

  private async runRollback(command: RollbackCommand): Promise<void> {
    let reason: UpdateRecord['reason'] = command.reason;
    let state: UpdateState = 'rolled_back';
    const install = await this.latestOf(command.model);
    if (install && !isTerminal(install.state)) {
      // Installing or shadowing: the candidate is discarded; the active model never changed.
      await this.run(install, { type: 'rollback_requested', reason: command.reason });
    } else {
      const failure = await this.o.effects.rollbackActive(command.model);
      if (failure) {
        state = 'failed';
        reason = failure;
      }
    }
    const record: UpdateRecord = {
      commandId: command.id,
      rolloutId: command.rolloutId,
      manifestText: '',
      artifactUrl: '',
      model: command.model,
      sha256: null,
      slot: null,
      state,
      reason,
      executionProvider: null,
      reentries: {},
      seq: ++this.seq,
    };
    await this.o.store.put(record);
    this.report(record);
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
      case 'discard':
        await fx.discard(record);
        return null;
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
      { commandId: record.commandId, model: record.model, state: record.state, reason: record.reason },
      'update',
    );
  }
}

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
