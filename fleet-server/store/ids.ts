/**
 * Record ids that sort by creation: `<prefix>-<ms, base 36, 9 digits>-<8 random hex>`. Listing newest first
 * then needs no index. The time part never repeats within one generator, even for two ids made in one clock
 * tick (it moves one millisecond past the last id instead), so ids from one process sort in the order made.
 */
import { randomUUID } from 'node:crypto';

export class SortableIds {
  private lastMs = 0;

  constructor(private readonly prefix: string) {}

  /** A new id for a record created at `now`. */
  next(now: Date): string {
    const ms = Math.max(now.getTime(), this.lastMs + 1);
    this.lastMs = ms;
    return `${this.prefix}-${ms.toString(36).padStart(9, '0')}-${randomUUID().slice(0, 8)}`;
  }
}
