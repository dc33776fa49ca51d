/**
 * The audit trail: every mutating API call and every automatic action (rollout transitions, gate verdicts,
 * rollbacks, retrain steps), appended to a hash chain in LevelDB. Each entry names who (actor, role), what
 * (action, target), when, a digest of the request, and the previous entry's hash; its own hash covers all of
 * that (canonical JSON, sha256). A head record (last sequence number and hash) is written in the same atomic
 * batch as each entry, so removing the newest entries is detected too.
 *
 * `verify` walks the chain and names the first entry that does not fit: an edited entry (its hash no longer
 * matches its content), a removed one (a gap in the sequence, or the head ahead of the chain), or entries
 * moved out of order (a sequence number under the wrong key, or a broken link to the previous hash).
 *
 * Storage: `audit` `<seq, 12 digits>` → AuditEntry; `audit-head` `head` → { seq, hash }. Unlike the other
 * collections, these carry no schema version and are never migrated on read (store/migrations.ts): an entry's
 * hash covers exactly its stored fields, so reading one in any other shape would make `verify` call it edited.
 * Should entries gain a field, old entries keep their shape and the hash stays the hash of what was written.
 */
import { createHash } from 'node:crypto';
import { canonicalize } from '../../shared/canonical-json.js';
import type { Collection, Db } from '../store/db.js';

export interface AuditEntry {
  seq: number;
  at: string;
  /** Operator token name, `device:<id>`, or `system:<component>` for automatic actions. */
  actor: string;
  role: string | null;
  /** `POST /api/v1/rollouts`, or an automatic action such as `rollout.aborted`. */
  action: string;
  target: string;
  /** sha256 of the request body (null without one). */
  digest: string | null;
  /** HTTP status for API calls; null for automatic actions. */
  status: number | null;
  detail: string | null;
  /** The previous entry's hash (64 zeros for the first). */
  prev: string;
  hash: string;
}

export type AuditInput = Pick<AuditEntry, 'actor' | 'action' | 'target'> &
  Partial<Pick<AuditEntry, 'role' | 'digest' | 'status' | 'detail'>>;

export type VerifyResult =
  | { ok: true; entries: number; head: string }
  | {
      ok: false;
      entries: number;
      /** The first entry that does not fit, by its key in the log. */
      firstBad: { seq: number; key: string; problem: 'edited' | 'removed' | 'reordered'; detail: string };
    };

const GENESIS = '0'.repeat(64);
const keyOf = (seq: number) => String(seq).padStart(12, '0');

export function entryHash(entry: Omit<AuditEntry, 'hash'>): string {
  return createHash('sha256').update(canonicalize(entry)).digest('hex');
}

export class AuditLog {
  private readonly entries: Collection<AuditEntry>;
  private readonly head: Collection<{ seq: number; hash: string }>;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<(entry: AuditEntry) => void>();

  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {
    this.entries = db.collection<AuditEntry>('audit');
    this.head = db.collection<{ seq: number; hash: string }>('audit-head');
  }

  /** Append one entry (appends are serialized: the chain has one order). */
  append(input: AuditInput): Promise<AuditEntry> {
    const appended = this.tail.then(async () => {
      const head = (await this.head.get('head')) ?? { seq: 0, hash: GENESIS };
      const body: Omit<AuditEntry, 'hash'> = {
        seq: head.seq + 1,
        at: this.now().toISOString(),
        actor: input.actor,
        role: input.role ?? null,
        action: input.action,
        target: input.target,
        digest: input.digest ?? null,
        status: input.status ?? null,
        detail: input.detail ?? null,
        prev: head.hash,
      };
      const entry: AuditEntry = { ...body, hash: entryHash(body) };
      await this.db.batch([
        this.entries.putOp(keyOf(entry.seq), entry),
        this.head.putOp('head', { seq: entry.seq, hash: entry.hash }),
      ]);
      for (const listener of this.listeners) listener(entry);
      return entry;
    });
    this.tail = appended.catch(() => undefined);
    return appended;
  }

  /** Told of every entry once it is stored (live updates); returns the unsubscribe. */
  subscribe(listener: (entry: AuditEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The newest `limit` entries, newest first, read by key from the head: cheap however long the log is. */
  async recent(limit: number): Promise<AuditEntry[]> {
    const head = await this.head.get('head');
    if (!head) return [];
    const keys = [];
    for (let seq = head.seq; seq > Math.max(0, head.seq - limit); seq--) keys.push(keyOf(seq));
    return (await this.entries.getMany(keys)).filter((e): e is AuditEntry => e !== undefined);
  }

  /** Newest first, filtered; at most `limit`. */
  async list(
    filter: { actor?: string; action?: string; target?: string; limit?: number } = {},
  ): Promise<AuditEntry[]> {
    const all = (await this.entries.values()).reverse();
    const matches = all.filter(
      (e) =>
        (filter.actor === undefined || e.actor === filter.actor) &&
        (filter.action === undefined || e.action.includes(filter.action)) &&
        (filter.target === undefined || e.target.includes(filter.target)),
    );
    return matches.slice(0, filter.limit ?? 100);
  }

  async verify(): Promise<VerifyResult> {
    await this.tail;
    const entries = await this.entries.entries();
    const bad = (seq: number, problem: 'edited' | 'removed' | 'reordered', detail: string): VerifyResult => ({
      ok: false,
      entries: entries.length,
      firstBad: { seq, key: keyOf(seq), problem, detail },
    });
    let prev = GENESIS;
    let expected = 1;
    for (const [key, entry] of entries) {
      const at = Number(key);
      if (at > expected)
        return bad(
          expected,
          'removed',
          `entry ${expected} is missing: the log goes from ${expected - 1} to ${at}`,
        );
      if (at < expected) return bad(at, 'reordered', `key ${key} follows entry ${expected - 1}`);
      const { hash, ...body } = entry;
      if (entryHash(body) !== hash)
        return bad(at, 'edited', `entry ${key}'s content does not match its hash`);
      if (entry.seq !== expected) return bad(at, 'reordered', `key ${key} holds entry ${entry.seq}`);
      if (entry.prev !== prev)
        return bad(at, 'reordered', `entry ${key} does not follow the entry before it in the chain`);
      prev = hash;
      expected++;
    }
    const head = (await this.head.get('head')) ?? { seq: 0, hash: GENESIS };
    if (head.seq !== expected - 1 || head.hash !== prev)
      return bad(
        expected,
        'removed',
        `the log ends at entry ${expected - 1} but its head records entry ${head.seq}`,
      );
    return { ok: true, entries: entries.length, head: prev };
  }
}
