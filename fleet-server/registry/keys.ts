/**
 * The fleet's manifest signing key: created at first start (private key file mode 0600), reused after.
 * Devices pin the public half at enrollment. The trusted set is a list so a later key rotation can hand out
 * the next key before switching to it.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  generateSigningKey,
  type PublicKeyInfo,
  publicInfoOf,
  type SigningKey,
} from '../../shared/crypto/signing.js';

export interface KeyRing {
  signing: SigningKey;
  trusted: PublicKeyInfo[];
}

export async function loadOrCreateKeyRing(dataDir: string): Promise<KeyRing> {
  const dir = join(dataDir, 'keys');
  const file = join(dir, 'signing-key.pem');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const created = generateSigningKey();
    // 'wx': never overwrite a key another process created meanwhile.
    await writeFile(file, created.privateKeyPem, { mode: 0o600, flag: 'wx' });
    pem = created.privateKeyPem;
  }
  const info = publicInfoOf(pem);
  await writeFile(join(dir, 'signing-key.pub.json'), `${JSON.stringify(info, null, 2)}\n`);
  return { signing: { ...info, privateKeyPem: pem }, trusted: [info] };
}
