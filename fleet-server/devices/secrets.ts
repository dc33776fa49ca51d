/**
 * Secrets at rest: device MQTT passwords as scrypt hashes (slow on purpose: they are guessable targets),
 * operator and enrollment tokens as sha256 (they are 256-bit random strings, so a fast hash suffices).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export interface ScryptHash {
  salt: string;
  hash: string;
}

export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export async function hashSecret(secret: string): Promise<ScryptHash> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(secret, salt, 32);
  return { salt: salt.toString('base64'), hash: hash.toString('base64') };
}

export async function verifySecret(secret: string, stored: ScryptHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const actual = await scryptAsync(secret, Buffer.from(stored.salt, 'base64'), expected.length);
  return timingSafeEqual(actual, expected);
}

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
