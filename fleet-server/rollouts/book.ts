/**
 * A rollout held in memory with the indexes reconcile needs, so that the work per device report is
 * proportional to what changed, not to the number of devices:
 * - devices by id and by cohort rank;
 * - per category (waiting, unfinished, shadowing, …) the set of ranks in it, counting members below a cohort
 *   size in O(log n) (`RankSet`);
 * - devices by state (counts);
 * - the devices waiting on a command, in a min-heap by when they next need a look (a re-send or a timeout).
 *
 * Planning never changes a book: `Draft` reads the book through the changes a plan has made so far, and
 * `plan…` functions (reconcile.ts) return a `Plan` — the new head, the changed devices, the commands, when to
 * look again. The controller applies a plan (`apply`, O(changes · log n)) only after persisting what it
 * returns. `from` (O(n)) builds a book from a stored record; `toRecord` (O(n) copy) writes one.
 */
import { DueHeap } from './due-heap.js';
import { RankSet } from './rank-set.js';
import {
  type DeviceRolloutState,
  isFinished,
  type PlannedCommand,
  RESEND_AFTER_MS,
  type RolloutDevice,
  type RolloutHead,
  type RolloutRecord,
  resendOf,
} from './record.js';

export interface Plan {
  head: RolloutHead;
  /** Devices changed (or added: a late joiner) by the plan, by id. */
  changes: ReadonlyMap<string, RolloutDevice>;
  commands: PlannedCommand[];
  /** When to reconcile again even if nothing is reported; null: only on reports or actions. */
  nextCheckAt: Date | null;
}

const CATEGORIES = {
  waiting: (d: RolloutDevice) => d.state === 'waiting',
  unfinished: (d: RolloutDevice) => !isFinished(d.state),
  /** Neither shadowing nor finished: a shadow step's measurement waits for these. */
  notShadowReady: (d: RolloutDevice) => d.state !== 'shadowing' && !isFinished(d.state),
  shadowing: (d: RolloutDevice) => d.state === 'shadowing',
  /** Shadowing and not yet told to activate: a setPercent step switches these. */
  unactivatedShadow: (d: RolloutDevice) => d.state === 'shadowing' && !d.activateId,
  /** Got the new version (or may still get it) and has no rollback yet: an abort rolls these back. */
  needsRollback: (d: RolloutDevice) =>
    d.state !== 'waiting' &&
    d.state !== 'skipped' &&
    d.state !== 'rolled_back' &&
    d.state !== 'failed' &&
    !d.rollbackId,
} as const;
export type Category = keyof typeof CATEGORIES;
const CATEGORY_NAMES = Object.keys(CATEGORIES) as Category[];

/**
 * When a device next needs reconcile's attention without any report: its command's re-send, or its
 * timeout, whichever is first; null when it waits on nobody (finished, never sent, shadowing until the fleet
 * moves on, or rolling back — rollbacks are re-sent on reconnect only and never time out). Timeouts count
 * from when the command was first issued, re-sends from when it last went out.
 */
export function dueAt(d: RolloutDevice, deviceTimeoutS: number): number | null {
  if (!d.sentAt || d.rollbackId || d.state === 'waiting' || isFinished(d.state)) return null;
  if (d.state === 'shadowing' && !d.activateId) return null;
  const timeout = Date.parse(d.issuedAt!) + deviceTimeoutS * 1000;
  const resend = resendOf(d) ? Date.parse(d.sentAt) + RESEND_AFTER_MS : Number.POSITIVE_INFINITY;
  return Math.min(timeout, resend);
}

export class RolloutBook {
  private readonly devices: RolloutDevice[];
  private readonly position = new Map<string, number>();
  private readonly byRank: number[] = [];
  private readonly sets = {} as Record<Category, RankSet>;
  private readonly states = new Map<DeviceRolloutState, number>();
  /** Devices waiting on a command, by their `dueAt`. */
  private readonly due = new DueHeap();

  private constructor(
    public head: RolloutHead,
    devices: readonly RolloutDevice[],
  ) {
    this.devices = devices.slice();
    for (const name of CATEGORY_NAMES) this.sets[name] = new RankSet(devices.length);
    this.devices.forEach((d, i) => {
      this.position.set(d.deviceId, i);
      this.index(d, null);
    });
  }

  static from(record: RolloutRecord): RolloutBook {
    const { devices, ...head } = record;
    return new RolloutBook(head, devices);
  }

  get size(): number {
    return this.devices.length;
  }

  get(deviceId: string): RolloutDevice | undefined {
    const i = this.position.get(deviceId);
    return i === undefined ? undefined : this.devices[i];
  }

  /** Where the device sits in the record (devices are listed, and commands go out, in this order). */
  positionOf(deviceId: string): number {
    return this.position.get(deviceId) ?? Number.POSITIVE_INFINITY;
  }

  atRank(rank: number): RolloutDevice | undefined {
    const i = this.byRank[rank];
    return i === undefined ? undefined : this.devices[i];
  }

  /** Devices of `category` among ranks < `below`. */
  count(category: Category, below = Number.POSITIVE_INFINITY): number {
    return this.sets[category].countBelow(Math.min(below, this.byRank.length));
  }

  /** Ranks of `category` below `below`, smallest first. */
  ranks(category: Category, below = Number.POSITIVE_INFINITY): Iterable<number> {
    return this.sets[category].below(Math.min(below, this.byRank.length));
  }

  countState(state: DeviceRolloutState): number {
    return this.states.get(state) ?? 0;
  }

  /** Devices whose `dueAt` is ≤ `nowMs` (no order promised). */
  dueBy(nowMs: number): string[] {
    return this.due.atOrBefore(nowMs);
  }

  /** The earliest `dueAt` after `nowMs` among devices not in `skip` (those the caller re-keyed), or null. */
  nextDueAfter(nowMs: number, skip: ReadonlySet<string>): number | null {
    return this.due.firstAfter(nowMs, skip);
  }

  /** Make the plan's result this book's state (after the controller persisted it). */
  apply(plan: Plan): void {
    this.head = plan.head;
    for (const d of plan.changes.values()) {
      const i = this.position.get(d.deviceId);
      if (i === undefined) {
        this.position.set(d.deviceId, this.devices.length);
        this.devices.push(d);
        this.index(d, null);
      } else {
        const before = this.devices[i]!;
        this.devices[i] = d;
        this.index(d, before);
      }
    }
  }

  toRecord(): RolloutRecord {
    return { ...this.head, devices: this.devices.slice() };
  }

  private index(d: RolloutDevice, before: RolloutDevice | null): void {
    if (before === null) this.byRank[d.rank] = this.position.get(d.deviceId)!;
    for (const name of CATEGORY_NAMES) {
      const was = before !== null && CATEGORIES[name](before);
      const is = CATEGORIES[name](d);
      if (is && !was) this.sets[name].add(d.rank);
      else if (was && !is) this.sets[name].delete(d.rank);
    }
    if (before === null || before.state !== d.state) {
      if (before !== null) this.states.set(before.state, this.states.get(before.state)! - 1);
      this.states.set(d.state, (this.states.get(d.state) ?? 0) + 1);
    }
    const at = dueAt(d, this.head.spec.deviceTimeoutS);
    if (at === null) this.due.delete(d.deviceId);
    else this.due.set(d.deviceId, at);
  }
}

/**
 * A book as a plan sees it: the book, with the changes made so far by this plan on top. Counts and
 * member walks add the changes' own contribution, so each costs O(log n + changes).
 */
export class Draft {
  head: RolloutHead;
  readonly changes = new Map<string, RolloutDevice>();

  constructor(readonly book: RolloutBook) {
    this.head = book.head;
  }

  get size(): number {
    let added = 0;
    for (const id of this.changes.keys()) if (!this.book.get(id)) added++;
    return this.book.size + added;
  }

  get(deviceId: string): RolloutDevice | undefined {
    return this.changes.get(deviceId) ?? this.book.get(deviceId);
  }

  atRank(rank: number): RolloutDevice | undefined {
    const base = this.book.atRank(rank);
    if (base) return this.changes.get(base.deviceId) ?? base;
    for (const d of this.changes.values()) if (d.rank === rank) return d;
    return undefined;
  }

  set(d: RolloutDevice): void {
    this.changes.set(d.deviceId, d);
  }

  count(category: Category, below = Number.POSITIVE_INFINITY): number {
    let n = this.book.count(category, below);
    for (const d of this.changes.values()) {
      if (d.rank >= below) continue;
      const before = this.book.get(d.deviceId);
      n += (CATEGORIES[category](d) ? 1 : 0) - (before && CATEGORIES[category](before) ? 1 : 0);
    }
    return n;
  }

  /** Devices of `category` among ranks < `below`, in record order (a snapshot: safe to `set` while walking). */
  members(category: Category, below = Number.POSITIVE_INFINITY): RolloutDevice[] {
    const found: RolloutDevice[] = [];
    for (const rank of this.book.ranks(category, below)) {
      const d = this.atRank(rank)!;
      if (CATEGORIES[category](d)) found.push(d);
    }
    for (const d of this.changes.values()) {
      const before = this.book.get(d.deviceId);
      if (d.rank < below && CATEGORIES[category](d) && !(before && CATEGORIES[category](before)))
        found.push(d);
    }
    return found.sort(
      (a, b) => this.book.positionOf(a.deviceId) - this.book.positionOf(b.deviceId) || a.rank - b.rank,
    );
  }

  countState(state: DeviceRolloutState): number {
    let n = this.book.countState(state);
    for (const d of this.changes.values()) {
      const before = this.book.get(d.deviceId);
      n += (d.state === state ? 1 : 0) - (before?.state === state ? 1 : 0);
    }
    return n;
  }

  /** Every device as the plan sees it, in record order: O(n), for measurements only. */
  all(): RolloutDevice[] {
    const out = this.book.toRecord().devices.map((d) => this.changes.get(d.deviceId) ?? d);
    for (const d of this.changes.values()) if (!this.book.get(d.deviceId)) out.push(d);
    return out;
  }

  plan(commands: PlannedCommand[], nextCheckAt: number | null): Plan {
    return {
      head: this.head,
      changes: this.changes,
      commands,
      nextCheckAt: nextCheckAt === null ? null : new Date(nextCheckAt),
    };
  }
}
