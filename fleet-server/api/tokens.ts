/**
 * Operator bearer tokens with roles. Tokens are 256-bit random strings shown once; only their sha256 is
 * stored. At first start an admin token is created, printed once and written to `<dataDir>/admin-token`.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { randomSecret, tokenDigest } from '../devices/secrets.js';
import type { Collection } from '../store/db.js';
import { writeFileAtomic } from '../store/files.js';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface OperatorTokenRecord {
  id: string;
  digest: string;
  role: Role;
  name: string;
  createdAt: string;
}

export interface Principal {
  id: string;
  name: string;
  role: Role;
}

export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

export class OperatorTokens {
  constructor(
    private readonly tokens: Collection<OperatorTokenRecord>,
    private readonly now: () => Date,
  ) {}

  async create(role: Role, name: string): Promise<{ id: string; token: string; role: Role; name: string }> {
    const minted = this.mint(role, name);
    await this.tokens.put(minted.record.digest, minted.record);
    return { id: minted.record.id, token: minted.token, role, name };
  }

  private mint(role: Role, name: string): { token: string; record: OperatorTokenRecord } {
    const token = `ef_${randomSecret(32)}`;
    const record: OperatorTokenRecord = {
      id: randomBytes(8).toString('hex'),
      digest: tokenDigest(token),
      role,
      name,
      createdAt: this.now().toISOString(),
    };
    return { token, record };
  }

  async authenticate(token: string): Promise<Principal | undefined> {
    const record = await this.tokens.get(tokenDigest(token));
    return record ? { id: record.id, name: record.name, role: record.role } : undefined;
  }

  /** Create the first admin token when none exists; returns it (to print once) or null. */
  async bootstrapAdmin(dataDir: string): Promise<string | null> {
    const existing = await this.tokens.values();
    if (existing.some((t) => t.role === 'admin')) return null;
    // File first, then the record: a crash in between leaves a file with a token that does not work yet
    // (the next start mints a new one), never a working admin token that nobody has.
    const { token, record } = this.mint('admin', 'bootstrap-admin');
    await writeFileAtomic(join(dataDir, 'admin-token'), `${token}\n`, 0o600);
    await this.tokens.put(record.digest, record);
    return token;
  }
}
