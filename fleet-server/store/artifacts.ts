/**
 * Content-addressed artifact files: `<root>/sha256/<hex>`. Writes go to a temp file, are fsynced and
 * renamed into place, so a reader never sees a partial artifact; storing the same bytes twice is a no-op.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../../shared/crypto/signing.js';
import { writeFileAtomic } from './files.js';

export interface ArtifactInfo {
  sha256: string;
  size: number;
}

export class ArtifactStore {
  private readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, 'sha256');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  pathOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new RangeError(`not a sha256: ${sha256}`);
    return join(this.dir, sha256);
  }

  async put(bytes: Uint8Array): Promise<ArtifactInfo> {
    const sha256 = sha256Hex(bytes);
    const target = this.pathOf(sha256);
    if (!(await this.stat(sha256))) await writeFileAtomic(target, bytes);
    return { sha256, size: bytes.length };
  }

  async stat(sha256: string): Promise<ArtifactInfo | undefined> {
    try {
      const s = await stat(this.pathOf(sha256));
      return { sha256, size: s.size };
    } catch {
      return undefined;
    }
  }

  /** A stream of bytes [start, end] inclusive. */
  read(sha256: string, start?: number, end?: number): ReadStream {
    return createReadStream(this.pathOf(sha256), { start, end });
  }
}
