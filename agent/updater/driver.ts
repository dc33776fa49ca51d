/**
 * Runs the update machine: receives commands (install, activate, rollback), persists each record BEFORE executing the effects of
 * its new state, executes them one by one and feeds the resulting event back into `step`. Work runs one
 * piece at a time, in arrival order. On start, unfinished records are recovered from where they were persisted.
 *
 * What happens across records — idempotent command ids, a rollback cancelling its install, activate routing,
 * a newer install superseding a shadowing candidate, what a restart resumes — is decided by `policy.ts` from
 * the persisted records, as values; this driver only loads the records, asks, and carries the decision out
 * (persisting before it acts). The outcome of a rollback is reported under the rollback's id.
 */
import type { Logger } from 'pino';
import {
  assertNever,
  type Command,
  PROTOCOL_VERSION,
  type Reason,
  type UpdateMessage,
  type UpdateState,
} from '../../shared/protocol/messages.js';
import type { ModelHost } from '../runtime/host.js';
import type { UpdateEffects } from './effects.js';
import { isTerminal, step, type UpdateEffect, type UpdateEvent, type UpdateRecord } from './machine.js';
import { type Decision, decide } from './policy.js';

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
    await this.carryOut(decide(await this.o.store.all(), { on: 'recover' }));
  }

  /**
   * Accept a command. Intake is serialized: the same command can arrive twice at once (the persistent
   * session's queued copy and the fleet's re-send on reconnect), and the second must find the first's record.
   */
  submit(command: Command): Promise<void> {
    const accepted = this.intake.then(async () => {
      switch (command.type) {
        case 'install':
        case 'rollback': {
          const input = { on: 'command', command, seq: this.seq + 1, stopping: this.stopping } as const;
          await this.carryOut(decide(await this.o.store.all(), input), { commandId: command.id });
          return;
        }
        case 'activate':
          // Queued like any work, so it is decided on the install's settled state (and a duplicate finds it switched).
          this.queue = this.queue.then(async () => {
            try {
              const decision = decide(await this.o.store.all(), { on: 'activate', command });
              await this.carryOut(decision, { commandId: command.id, model: command.model });
            } catch (err) {
              this.o.log.error({ err, commandId: command.id }, 'activate failed');
            }
          });
          return;
        default:
          return assertNever(command, 'command type');
      }
    });
    this.intake = accepted.catch(() => undefined);
    return accepted;
  }

  /**
   * Do what the policy decided, in its order: a record is persisted before anything acts on it. Returns the
   * event a rollback's work ends in when the decision was to leave the active model, else null.
   */
  private async carryOut(
    decision: Decision,
    about: Record<string, unknown> = {},
  ): Promise<UpdateEvent | null> {
    switch (decision.do) {
      case 'report':
        this.report(decision.record);
        return null;
      case 'ignore':
        if (decision.log) this.o.log[decision.log.level](about, decision.log.message);
        return null;
      case 'park':
        this.seq = decision.record.seq;
        await this.o.store.put(decision.record);
        return null;
      case 'start':
        this.seq = decision.record.seq;
        // Persisted before any install is stopped or any slot touched.
        await this.o.store.put(decision.record);
        if (decision.cancel) this.cancels.set(decision.cancel.installId, decision.cancel.reason);
        this.enqueue(decision.record, { type: 'start' });
        return null;
      case 'resume':
        this.seq = decision.seq;
        for (const cancel of decision.cancels) this.cancels.set(cancel.installId, cancel.reason);
        for (const record of decision.records) {
          this.o.log.info(
            { commandId: record.commandId, state: record.state, kind: record.kind },
            'recovering update',
          );
          this.enqueue(record, { type: 'recover', maxReentries: this.o.maxReentries });
        }
        return null;
      case 'run':
        for (const { record, event } of decision.steps) await this.run(record, event);
        return null;
      case 'leave_active': {
        const outcome = await this.o.effects.rollbackActive(decision.model);
        if (!outcome.ok) return { type: 'failed', reason: outcome.reason };
        if (!outcome.switched) {
          this.o.log.info(
            { ...about, model: decision.model },
            'rollback: this model version is neither installing nor active here; nothing to leave',
          );
        }
        return { type: 'left' };
      }
      default:
        return assertNever(decision, 'policy decision');
    }
  }

  /** A rollback's work: discard the install of its model if unfinished, else leave the model if active. */
  private async leave(rollback: UpdateRecord): Promise<UpdateEvent> {
    const decision = decide(await this.o.store.all(), { on: 'leave', rollback });
    return (await this.carryOut(decision, { commandId: rollback.commandId })) ?? { type: 'left' };
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
      // A rollback arrived for this install: the policy turns its next event into `rollback_requested`.
      const cancel = this.cancels.get(record.commandId);
      if (cancel) event = decide([record], { on: 'step', record, event, cancel }).steps[0]!.event;
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
        // Candidates of this model still shadowing end first: the download overwrites their slot.
        await this.carryOut(decide(await this.o.store.all(), { on: 'download', install: record }));
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
