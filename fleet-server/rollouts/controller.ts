/**
 * Runs rollouts: the I/O around the pure rules of state.ts. For every change — a new rollout, a device
 * report, an operator action, a timer — it reconciles under the rollout's lock, persists the record, and only
 * then sends the commands reconcile planned (install / activate / rollback, each with an id devices are
 * idempotent by). A timer per rollout wakes it when reconcile asks (analysis intervals, pauses, timeouts).
 * After a restart `start` reconciles every unfinished rollout: nothing finished is re-sent.
 * Each targeted device gets the variant of the version its firmware profile prefers (variants.ts): chosen
 * when the rollout is created (refused when a device would get none), recorded per device, and the one whose
 * manifest and artifact its install command carries.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { RolloutSpec } from '../../shared/api/rollouts.js';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import type { FirmwareProfile } from '../../shared/firmware-profile.js';
import { type Command, PROTOCOL_VERSION, type UpdateMessage } from '../../shared/protocol/messages.js';
import type { DeviceRegistry } from '../devices/registry.js';
import type { DriftReports } from '../drift/reports.js';
import type { ModelRegistry } from '../registry/models.js';
import { variantOf, variantsOf } from '../registry/variants.js';
import type { Collection } from '../store/db.js';
import { SortableIds } from '../store/ids.js';
import { KeyedMutex } from '../store/lock.js';
import type { TelemetryWindows } from '../telemetry/windows.js';
import { ActionError, applyAction, type OperatorAction } from './actions.js';
import { type Plan, RolloutBook } from './book.js';
import { type FleetView, measurementDue } from './measure.js';
import { type Joiner, planJoin, planReconcile, planUpdate, unfinishedFor } from './reconcile.js';
import {
  isFinal,
  isFinished,
  newRollout,
  type PlannedCommand,
  type RolloutDevice,
  type RolloutHead,
  type RolloutRecord,
  type RolloutTargets,
} from './record.js';
import { cohortKey } from './spec.js';
import {
  assignVariants,
  chooseVariant,
  FALLBACK_ACCEPTS,
  noVariantError,
  noVariantReason,
} from './variants.js';

export interface CommandSender {
  sendCommand(deviceId: string, command: Command): Promise<void>;
}

const EMPTY_VIEW: FleetView = { traffic: new Map(), shadow: new Map() };

export class RolloutController {
  private readonly lock = new KeyedMutex();
  private readonly ids = new SortableIds('ro');
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Books of the rollouts this controller has reconciled, by id (it is their only writer). */
  private readonly books = new Map<string, RolloutBook>();
  private closed = false;

  constructor(
    private readonly rollouts: Collection<RolloutRecord>,
    private readonly devices: DeviceRegistry,
    private readonly models: ModelRegistry,
    private readonly sender: CommandSender,
    private readonly options: {
      publicUrl: string;
      now: () => Date;
      log: Logger;
      /** Telemetry for gates; without it analyses see no traffic (inconclusive). */
      telemetry?: TelemetryWindows;
      /** Told of every event a reconcile added (transitions, gate verdicts, rollbacks): the audit trail. */
      onEvents?: (rollout: RolloutRecord, events: RolloutRecord['status']['events']) => Promise<void>;
      /** Device drift reports, for the drift_share gate. */
      drift?: Pick<DriftReports, 'gateInput'>;
      /** Called once when every targeted device has activated the version (e.g. to move `production`). */
      onSucceeded?: (rollout: RolloutRecord) => Promise<void>;
      /** Told after every write of a record, device states included (which leave no audit entry). */
      onSaved?: (rollout: RolloutRecord) => void;
      /**
       * The fleet's firmware profiles, for the variants each device accepts. A device whose profile is not
       * here (or every device, without it) accepts only `default`.
       */
      profiles?: ReadonlyMap<string, Pick<FirmwareProfile, 'acceptsVariants'>>;
    },
  ) {}

  /**
   * Pick up unfinished rollouts (after a restart): reconcile each, which re-arms its timer — also a
   * succeeded rollout whose late joiners have not finished (their re-sends and timeouts go on).
   */
  async start(): Promise<void> {
    for (const rollout of await this.rollouts.values()) {
      const live =
        !isFinal(rollout.status.phase) ||
        (rollout.status.phase === 'succeeded' && rollout.devices.some((d) => !isFinished(d.state)));
      if (live) await this.update(rollout.id);
    }
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  async create(request: {
    model: { name: string; version: number };
    targets: RolloutTargets;
    spec: RolloutSpec;
    actor: string;
    /**
     * The id to create it under, for a caller that persists the id before it asks (the retrain loop): a
     * rollout that already exists under this id is returned as it is, so asking again after a crash creates
     * nothing twice. Without one, a new sortable id.
     */
    id?: string;
  }): Promise<RolloutRecord> {
    const { model, targets } = request;
    if (request.id !== undefined) {
      const existing = await this.rollouts.get(request.id);
      if (existing) return existing;
    }
    const version = await this.models.get(model.name, model.version); // 404 for an unknown version
    const targeted = await this.resolveTargets(targets);
    const offered = variantsOf(version).map((v) => v.variant);
    const { variants, unfit } = assignVariants(targeted, offered, this.acceptsOf);
    if (unfit.length > 0) throw noVariantError(model, offered, unfit, this.acceptsOf);
    for (const other of await this.rollouts.values()) {
      if (other.model.name === model.name && !isFinal(other.status.phase)) {
        throw new ConflictError(
          `rollout ${other.id} of ${other.model.name}@${other.model.version} is still ${other.status.phase}; finish, abort or roll it back first`,
          'rollout_in_progress',
        );
      }
    }
    const now = this.options.now();
    const id = request.id ?? this.ids.next(now);
    const rollout = newRollout({
      id,
      model: { name: model.name, version: model.version },
      targets,
      spec: request.spec,
      deviceIds: [...targeted.keys()],
      cohortKey: (deviceId) => cohortKey(deviceId, id),
      variants,
      actor: request.actor,
      now,
    });
    // Persisted with every device waiting before the first reconcile plans any command.
    await this.save(rollout);
    return this.update(id);
  }

  /** A fresh rollout id, for a caller that must persist it before calling `create({ id })`. */
  newId(): string {
    return this.ids.next(this.options.now());
  }

  async get(id: string): Promise<RolloutRecord> {
    const rollout = await this.rollouts.get(id);
    if (!rollout) throw new NotFoundError('rollout', id);
    return rollout;
  }

  async list(): Promise<RolloutRecord[]> {
    return (await this.rollouts.values()).reverse();
  }

  /** An operator action (pause, resume, abort, rollback, promote). 409 when it does not apply now. */
  async act(id: string, action: OperatorAction, actor: string): Promise<RolloutRecord> {
    await this.get(id);
    try {
      return await this.update(id, (book) => ({
        head: applyAction(book.head, action, actor, this.options.now()),
        changes: new Map(),
        commands: [],
        nextCheckAt: null,
      }));
    } catch (err) {
      if (err instanceof ActionError) throw new ConflictError(err.message, err.code);
      throw err;
    }
  }

  async onUpdate(deviceId: string, report: UpdateMessage): Promise<void> {
    const existing = await this.rollouts.get(report.rolloutId);
    if (!existing) {
      this.options.log.warn(
        { deviceId, rolloutId: report.rolloutId },
        'update report for an unknown rollout',
      );
      return;
    }
    await this.update(report.rolloutId, (book) => {
      const device = planUpdate(book, deviceId, report, this.options.now());
      return (
        device && { head: book.head, changes: new Map([[deviceId, device]]), commands: [], nextCheckAt: null }
      );
    });
  }

  /**
   * A device came (back) online: send again whatever command of a live rollout it has not finished, and give
   * it the production version of any model whose completed rollout targets it by tag but never reached it
   * (it enrolled later, or was never part of it).
   */
  async onDeviceOnline(deviceId: string): Promise<void> {
    const all = await this.rollouts.values();
    for (const rollout of all) {
      const device = rollout.devices.find((d) => d.deviceId === deviceId);
      const planned = unfinishedFor(rollout, deviceId, device);
      if (planned) await this.send(rollout, device, planned);
    }
    await this.adopt(deviceId, all);
  }

  private async adopt(deviceId: string, all: RolloutRecord[]): Promise<void> {
    const device = await this.devices.find(deviceId);
    if (!device) return;
    for (const summary of await this.models.list()) {
      if (summary.production === null) continue;
      if (device.models.some((m) => m.name === summary.name && m.version === summary.production)) continue;
      // The newest completed rollout of the production version whose tags the device matches.
      const rollout = all
        .filter(
          (r) =>
            r.model.name === summary.name &&
            r.model.version === summary.production &&
            r.status.phase === 'succeeded' &&
            r.targets.tags !== undefined &&
            Object.keys(r.targets.tags).length > 0 &&
            Object.entries(r.targets.tags).every(([k, v]) => device.tags[k] === v),
        )
        .at(-1);
      if (!rollout || rollout.devices.some((d) => d.deviceId === deviceId)) continue;
      // Its variant, as at creation; without one it joins as skipped (with the reason), so it is not retried.
      const offered = variantsOf(await this.models.get(rollout.model.name, rollout.model.version)).map(
        (v) => v.variant,
      );
      const accepts = this.acceptsOf(device.profile);
      const variant = chooseVariant(offered, accepts ?? FALLBACK_ACCEPTS);
      const joiner: Joiner =
        variant === null
          ? {
              deviceId,
              variant: null,
              reason: {
                code: 'no_variant',
                message: noVariantReason(rollout.model, offered, device.profile, accepts),
              },
            }
          : { deviceId, variant };
      let joined = false;
      await this.update(rollout.id, (book) => {
        const plan = planJoin(book, joiner, this.options.now());
        joined = plan !== null;
        return plan;
      });
      if (variant === null) {
        this.options.log.warn(
          { deviceId, rolloutId: rollout.id, model: rollout.model, profile: device.profile, offered },
          'late device has no variant of production',
        );
      } else if (joined) {
        this.options.log.info(
          { deviceId, rolloutId: rollout.id, model: rollout.model },
          'late device gets production',
        );
      }
    }
  }

  /**
   * Under the rollout's lock: apply the plan `mutate` makes (a report, an action, a join), reconcile,
   * persist, then send what reconcile planned and re-arm the timer. The book stays cached between calls (this
   * controller is the only writer of its rollouts); a failure drops it, so the next call reloads what was
   * persisted.
   */
  private update(id: string, mutate?: (book: RolloutBook) => Plan | null): Promise<RolloutRecord> {
    return this.lock.run(id, async () => {
      const book = await this.bookOf(id);
      try {
        return await this.reconcileBook(book, mutate);
      } catch (err) {
        this.books.delete(id);
        throw err;
      }
    });
  }

  private async reconcileBook(
    book: RolloutBook,
    mutate: ((book: RolloutBook) => Plan | null) | undefined,
  ): Promise<RolloutRecord> {
    const id = book.head.id;
    const stored = book.head;
    const mutation = mutate?.(book) ?? null;
    if (mutation) book.apply(mutation);
    const now = this.options.now();
    const view = await this.viewFor(book, now);
    const plan = planReconcile(book, view, now, () => randomUUID());
    const changed = mutation !== null || plan.head !== book.head || plan.changes.size > 0;
    book.apply(plan);
    const rollout = book.toRecord();
    if (changed) await this.save(rollout);
    const events = newEvents(stored, book.head);
    if (events.length > 0) {
      await this.options
        .onEvents?.(rollout, events)
        .catch((err) => this.options.log.error({ err, rolloutId: id }, 'rollout events hook failed'));
    }
    for (const command of plan.commands) await this.send(book.head, book.get(command.deviceId), command);
    this.arm(id, plan.nextCheckAt);
    if (stored.status.phase !== 'succeeded' && book.head.status.phase === 'succeeded') {
      await this.options
        .onSucceeded?.(rollout)
        .catch((err) => this.options.log.error({ err, rolloutId: id }, 'rollout success hook failed'));
    }
    if (stored.status.phase !== book.head.status.phase) {
      this.options.log.info(
        {
          rolloutId: id,
          from: stored.status.phase,
          to: book.head.status.phase,
          abort: book.head.status.abort?.reason,
        },
        'rollout phase changed',
      );
    }
    return rollout;
  }

  /** The cached book of a rollout, or one built from its stored record. */
  private async bookOf(id: string): Promise<RolloutBook> {
    const cached = this.books.get(id);
    if (cached) return cached;
    const stored = await this.rollouts.get(id);
    if (!stored) throw new NotFoundError('rollout', id);
    const book = RolloutBook.from(stored);
    this.books.set(id, book);
    return book;
  }

  private async save(rollout: RolloutRecord): Promise<void> {
    await this.rollouts.put(rollout.id, rollout);
    this.options.onSaved?.(rollout);
  }

  /** Telemetry since the analysis began, only when a measurement is due: reports in between stay cheap. */
  private async viewFor(book: RolloutBook, now: Date): Promise<FleetView> {
    const rollout = book.head;
    const analysis = rollout.status.analysis;
    if (!this.options.telemetry || !analysis || !measurementDue(rollout, now)) return EMPTY_VIEW;
    const deviceIds = book.toRecord().devices.map((d) => d.deviceId);
    const since = Date.parse(analysis.startedAt);
    const view = await this.options.telemetry.view(deviceIds, rollout.model, since);
    const drift = await this.options.drift?.gateInput(deviceIds, rollout.model, since);
    return drift ? { ...view, drift } : view;
  }

  private arm(id: string, at: Date | null): void {
    const existing = this.timers.get(id);
    if (existing) clearTimeout(existing);
    this.timers.delete(id);
    if (at === null || this.closed) return;
    const delay = Math.max(0, Math.min(at.getTime() - this.options.now().getTime(), 2 ** 31 - 1));
    const timer = setTimeout(() => {
      this.timers.delete(id);
      this.update(id).catch((err) =>
        this.options.log.error({ err, rolloutId: id }, 'scheduled rollout reconcile failed'),
      );
    }, delay);
    timer.unref();
    this.timers.set(id, timer);
  }

  /** The targeted devices, id → firmware profile. */
  private async resolveTargets(targets: RolloutTargets): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (const id of targets.devices ?? []) {
      const device = await this.devices.find(id);
      if (!device) {
        throw new ValidationError(`unknown device '${id}' in rollout targets`, { code: 'unknown_device' });
      }
      found.set(id, device.profile);
    }
    if (targets.tags && Object.keys(targets.tags).length > 0) {
      for (const device of await this.devices.list({ tags: targets.tags }))
        found.set(device.id, device.profile);
    }
    if (found.size === 0)
      throw new ValidationError('the rollout targets match no device', { code: 'no_targets' });
    return new Map([...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  private readonly acceptsOf = (profile: string): readonly string[] | undefined =>
    this.options.profiles?.get(profile)?.acceptsVariants;

  private async send(
    rollout: Pick<RolloutRecord, 'id' | 'model'>,
    device: RolloutDevice | undefined,
    planned: PlannedCommand,
  ): Promise<void> {
    const base: { v: typeof PROTOCOL_VERSION; id: string; ts: number; rolloutId: string } = {
      v: PROTOCOL_VERSION,
      id: planned.id,
      ts: this.options.now().getTime(),
      rolloutId: rollout.id,
    };
    let command: Command;
    if (planned.kind === 'install') {
      // Read the stored, signed manifest at send time: what the registry holds is what devices verify. The
      // device's variant (records from before variants have none: the version's first variant).
      const version = await this.models.get(rollout.model.name, rollout.model.version);
      const chosen = device?.variant;
      const variant = chosen === undefined ? variantsOf(version)[0]! : variantOf(version, chosen);
      command = {
        ...base,
        type: 'install',
        manifest: JSON.stringify(variant.manifest),
        artifactUrl: `${this.options.publicUrl}/api/v1/artifacts/${variant.artifact.sha256}`,
        mode: planned.mode,
        shadowPercent: planned.shadowPercent,
      };
    } else if (planned.kind === 'activate') {
      command = { ...base, type: 'activate', model: rollout.model };
    } else {
      command = { ...base, type: 'rollback', model: rollout.model, reason: planned.reason };
    }
    try {
      await this.sender.sendCommand(planned.deviceId, command);
    } catch (err) {
      // Not fatal: the command is re-sent when the device next comes online, or after RESEND_AFTER_MS.
      this.options.log.warn(
        { err, deviceId: planned.deviceId, rolloutId: rollout.id, command: planned.kind },
        'rollout command not sent',
      );
    }
  }
}

/** Events in `after` that `before` did not have (the list is capped, so find where `before` ended). */
function newEvents(before: RolloutHead, after: RolloutHead): RolloutHead['status']['events'] {
  if (after === before) return [];
  const last = before.status.events.at(-1);
  const at = last ? after.status.events.lastIndexOf(last) : -1;
  return at >= 0
    ? after.status.events.slice(at + 1)
    : after.status.events.filter((e) => !before.status.events.includes(e));
}
