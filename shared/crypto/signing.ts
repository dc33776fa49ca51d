/**
 * Ed25519 keys, key ids and detached signatures (node:crypto; pure computation, no I/O).
 * A key id is the hex sha256 of the raw 32-byte public key, so anyone holding the key can derive its id.
 * Public keys travel as base64 of the raw 32 bytes; private keys as PKCS#8 PEM.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';

export interface PublicKeyInfo {
  keyid: string;
  /** base64 of the raw 32-byte Ed25519 public key */
  publicKey: string;
}

export interface SigningKey extends PublicKeyInfo {
  /** PKCS#8 PEM */
  privateKeyPem: string;
}

export interface Signature {
  keyid: string;
  /** base64 Ed25519 signature */
  sig: string;
}

export function keyIdOf(rawPublicKey: Buffer): string {
  return createHash('sha256').update(rawPublicKey).digest('hex');
}

export function generateSigningKey(): SigningKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  return {
    keyid: keyIdOf(raw),
    publicKey: raw.toString('base64'),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** Rebuild the public half (key id + base64 key) from a stored private key. */
export function publicInfoOf(privateKeyPem: string): PublicKeyInfo {
  const raw = rawPublicKey(createPublicKey(createPrivateKey(privateKeyPem)));
  return { keyid: keyIdOf(raw), publicKey: raw.toString('base64') };
}

export function signBytes(bytes: Buffer, key: SigningKey): Signature {
  const sig = sign(null, bytes, createPrivateKey(key.privateKeyPem));
  return { keyid: key.keyid, sig: sig.toString('base64') };
}

export function verifyBytes(bytes: Buffer, signature: string, publicKeyB64: string): boolean {
  let key: KeyObject;
  try {
    key = publicKeyFromRaw(Buffer.from(publicKeyB64, 'base64'));
  } catch {
    return false;
  }
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false;
  return verify(null, bytes, key, sig);
}

export function sha256Hex(bytes: Buffer | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new TypeError('not an Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}

function publicKeyFromRaw(raw: Buffer): KeyObject {
  if (raw.length !== 32) throw new TypeError(`Ed25519 public key must be 32 bytes, got ${raw.length}`);
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
}
