/**
 * Durable writes for the fleet's files: temp file (created with its final mode) + fsync + rename, so a
 * reader or a crash sees the old content or the new, never a torn or briefly world-readable file.
 */
import { randomBytes } from 'node:crypto';
import { open, rename } from 'node:fs/promises';

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
}
