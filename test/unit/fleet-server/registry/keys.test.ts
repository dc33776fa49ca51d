/** The fleet signing key: created once with a private file mode, reused on every later start. */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateKeyRing } from '../../../../fleet-server/registry/keys.js';
import { signBytes, verifyBytes } from '../../../../shared/crypto/signing.js';

describe('loadOrCreateKeyRing', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-keys-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('creates an Ed25519 key at first start (mode 0600) and trusts its public half', async () => {
    const ring = await loadOrCreateKeyRing(dir);
    const file = join(dir, 'keys', 'signing-key.pem');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toBe(ring.signing.privateKeyPem);
    expect(ring.trusted).toEqual([{ keyid: ring.signing.keyid, publicKey: ring.signing.publicKey }]);
    const sig = signBytes(Buffer.from('manifest'), ring.signing);
    expect(verifyBytes(Buffer.from('manifest'), sig.sig, ring.trusted[0]!.publicKey)).toBe(true);
  });

  it('reuses the stored key on later starts', async () => {
    const first = await loadOrCreateKeyRing(dir);
    const again = await loadOrCreateKeyRing(dir);
    expect(again.signing).toEqual(first.signing);
    expect(again.trusted).toEqual(first.trusted);
    const otherDir = await mkdtemp(join(tmpdir(), 'fleet-keys-'));
    try {
      expect((await loadOrCreateKeyRing(otherDir)).signing.keyid).not.toBe(first.signing.keyid);
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });
});
