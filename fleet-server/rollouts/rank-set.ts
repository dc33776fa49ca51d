/**
 * A set of small non-negative integers (cohort ranks) that counts its members below a bound and finds its
 * k-th smallest member in O(log n): a Fenwick tree over 0/1 membership. Reconcile asks "how many devices
 * of the first `size` ranks are still unfinished?" on every device report; this answers it without walking
 * the cohort. Grows by doubling when a rank beyond its capacity is added (a device joining later).
 */
export class RankSet {
  private tree: Int32Array;
  private member: Uint8Array;
  private count = 0;

  constructor(capacity = 16) {
    const size = Math.max(16, capacity);
    this.tree = new Int32Array(size + 1);
    this.member = new Uint8Array(size);
  }

  get size(): number {
    return this.count;
  }

  has(rank: number): boolean {
    return this.member[rank] === 1;
  }

  add(rank: number): void {
    if (rank >= this.member.length) this.grow(rank + 1);
    if (this.member[rank] === 1) return;
    this.member[rank] = 1;
    this.count++;
    this.bump(rank, 1);
  }

  delete(rank: number): void {
    if (rank >= this.member.length || this.member[rank] !== 1) return;
    this.member[rank] = 0;
    this.count--;
    this.bump(rank, -1);
  }

  /** Members < bound. */
  countBelow(bound: number): number {
    let i = Math.min(bound, this.member.length);
    let sum = 0;
    while (i > 0) {
      sum += this.tree[i]!;
      i -= i & -i;
    }
    return sum;
  }

  /** The k-th smallest member (0-based), or -1 when there are not that many. */
  kth(k: number): number {
    if (k < 0 || k >= this.count) return -1;
    let pos = 0;
    let remaining = k + 1;
    for (let step = highestPowerOfTwo(this.member.length); step > 0; step >>= 1) {
      const next = pos + step;
      if (next <= this.member.length && this.tree[next]! < remaining) {
        pos = next;
        remaining -= this.tree[next]!;
      }
    }
    return pos; // 1-based index pos+1 holds it, i.e. rank pos
  }

  /** Members < bound, smallest first: O(k log n) for k members. */
  *below(bound: number): Generator<number> {
    const n = this.countBelow(bound);
    for (let k = 0; k < n; k++) yield this.kth(k);
  }

  private bump(rank: number, delta: number): void {
    for (let i = rank + 1; i <= this.member.length; i += i & -i) this.tree[i]! += delta;
  }

  private grow(atLeast: number): void {
    let size = this.member.length;
    while (size < atLeast) size *= 2;
    const members = this.member;
    this.tree = new Int32Array(size + 1);
    this.member = new Uint8Array(size);
    this.count = 0;
    members.forEach((m, rank) => {
      if (m === 1) this.add(rank);
    });
  }
}

function highestPowerOfTwo(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}
