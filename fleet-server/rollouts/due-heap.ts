/**
 * Devices keyed by when they are next due (a re-send or a timeout), in an indexed binary min-heap: set,
 * re-key and remove in O(log n), and walks that visit only the entries they return (plus the ones they are
 * told to skip). There are no stale entries, so a walk never wades through finished devices.
 */
export class DueHeap {
  private readonly keys: number[] = [];
  private readonly ids: string[] = [];
  private readonly index = new Map<string, number>();

  get size(): number {
    return this.ids.length;
  }

  get(id: string): number | undefined {
    const i = this.index.get(id);
    return i === undefined ? undefined : this.keys[i];
  }

  set(id: string, key: number): void {
    const i = this.index.get(id);
    if (i === undefined) {
      this.keys.push(key);
      this.ids.push(id);
      this.index.set(id, this.ids.length - 1);
      this.up(this.ids.length - 1);
      return;
    }
    const old = this.keys[i]!;
    this.keys[i] = key;
    if (key < old) this.up(i);
    else if (key > old) this.down(i);
  }

  delete(id: string): void {
    const i = this.index.get(id);
    if (i === undefined) return;
    const last = this.ids.length - 1;
    if (i !== last) this.move(last, i);
    this.keys.pop();
    this.ids.pop();
    this.index.delete(id);
    if (i < this.ids.length) {
      this.up(i);
      this.down(i);
    }
  }

  /** Every id whose key is ≤ `bound`. */
  atOrBefore(bound: number): string[] {
    const found: string[] = [];
    const stack = [0];
    while (stack.length > 0) {
      const i = stack.pop()!;
      if (i >= this.ids.length || this.keys[i]! > bound) continue; // heap order: its subtree is later still
      found.push(this.ids[i]!);
      stack.push(2 * i + 1, 2 * i + 2);
    }
    return found;
  }

  /** The smallest key > `after` among ids not in `skip`, or null. */
  firstAfter(after: number, skip: ReadonlySet<string>): number | null {
    let best: number | null = null;
    const stack = [0];
    while (stack.length > 0) {
      const i = stack.pop()!;
      if (i >= this.ids.length) continue;
      const key = this.keys[i]!;
      if (best !== null && key >= best) continue;
      if (key > after && !skip.has(this.ids[i]!)) {
        best = key; // its subtree is no earlier
        continue;
      }
      stack.push(2 * i + 1, 2 * i + 2);
    }
    return best;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.keys[parent]! <= this.keys[i]!) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.ids.length && this.keys[l]! < this.keys[m]!) m = l;
      if (r < this.ids.length && this.keys[r]! < this.keys[m]!) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(a: number, b: number): void {
    const key = this.keys[a]!;
    const id = this.ids[a]!;
    this.move(b, a);
    this.keys[b] = key;
    this.ids[b] = id;
    this.index.set(id, b);
  }

  private move(from: number, to: number): void {
    this.keys[to] = this.keys[from]!;
    this.ids[to] = this.ids[from]!;
    this.index.set(this.ids[to]!, to);
  }
}
