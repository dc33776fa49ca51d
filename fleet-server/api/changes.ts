/**
 * Live "this changed" signals for the console, beside the audit trail's `change` events: state that moves
 * without an audit entry — a device's state in a rollout, a training run's epochs, a device going offline.
 * A signal names what changed, not how; the console refetches it. Bursts are coalesced per (kind, id): the
 * first change is told at once, later ones within `windowMs` become one signal at the end of the window, so
 * a subscriber never misses the final state and never gets more than one signal per window per thing.
 */

export type ChangeKind = 'rollout' | 'training-run' | 'device';

export interface Change {
  kind: ChangeKind;
  id: string;
}

export const COALESCE_MS = 250;

export class ChangeFeed {
  private readonly listeners = new Set<(change: Change) => void>();
  /** Things inside their quiet window → whether another change came during it. */
  private readonly quiet = new Map<string, boolean>();

  constructor(private readonly windowMs = COALESCE_MS) {}

  publish(kind: ChangeKind, id: string): void {
    // Nobody listening (no console open): no timers either.
    if (this.listeners.size === 0) return;
    const key = `${kind}/${id}`;
    if (this.quiet.has(key)) {
      this.quiet.set(key, true);
      return;
    }
    this.emit(key, { kind, id });
  }

  /** Told of every (coalesced) change; returns the unsubscribe. */
  subscribe(listener: (change: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(key: string, change: Change): void {
    for (const listener of this.listeners) listener(change);
    this.quiet.set(key, false);
    setTimeout(() => {
      const again = this.quiet.get(key);
      this.quiet.delete(key);
      if (again) this.emit(key, change);
    }, this.windowMs).unref();
  }
}
