import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  generateSigningKey,
  keyIdOf,
  publicInfoOf,
  type SigningKey,
  sha256Hex,
  signBytes,
  verifyBytes,
} from '../../../shared/crypto/signing.js';

/** RFC 8032 §7.1, TEST 1 and TEST 2: fixed keys with known signatures (Ed25519 is deterministic). */
const RFC8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

/** A SigningKey from a raw 32-byte seed: PKCS#8 DER is a fixed 16-byte prefix plus the seed. */
function keyFromSeed(seedHex: string): SigningKey {
  const der = Buffer.concat([
    Buffer.from('302e020100300506032b657004220420', 'hex'),
    Buffer.from(seedHex, 'hex'),
  ]);
  const pem = `-----BEGIN PRIVATE KEY-----\n${der.toString('base64')}\n-----END PRIVATE KEY-----\n`;
  return { ...publicInfoOf(pem), privateKeyPem: pem };
}

describe('Ed25519 signing', () => {
  it.each(RFC8032)('reproduces the RFC 8032 test vector for public key $publicKey', (vector) => {
    const key = keyFromSeed(vector.seed);
    expect(Buffer.from(key.publicKey, 'base64').toString('hex')).toBe(vector.publicKey);
    const signature = signBytes(Buffer.from(vector.message, 'hex'), key);
    expect(Buffer.from(signature.sig, 'base64').toString('hex')).toBe(vector.signature);
    expect(signature.keyid).toBe(key.keyid);
    expect(verifyBytes(Buffer.from(vector.message, 'hex'), signature.sig, key.publicKey)).toBe(true);
  });

  it('generates keys whose id is the sha256 of the raw 32-byte public key', () => {
    const key = generateSigningKey();
    const raw = Buffer.from(key.publicKey, 'base64');
    expect(raw).toHaveLength(32);
    expect(key.keyid).toBe(createHash('sha256').update(raw).digest('hex'));
    expect(key.keyid).toMatch(/^[0-9a-f]{64}$/);
    expect(key.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(keyIdOf(raw)).toBe(key.keyid);
    // Fixed vector (sha256 computed independently): the id of the RFC 8032 TEST 1 public key.
    expect(keyIdOf(Buffer.from(RFC8032[0]!.publicKey, 'hex'))).toBe(
      '21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9',
    );
    expect(keyFromSeed(RFC8032[0]!.seed).keyid).toBe(
      '21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9',
    );
    expect(generateSigningKey().keyid).not.toBe(key.keyid);
  });

  it('publicInfoOf rebuilds the public half from the stored private key', () => {
    const key = generateSigningKey();
    expect(publicInfoOf(key.privateKeyPem)).toEqual({ keyid: key.keyid, publicKey: key.publicKey });
  });

  it('round-trips a signature, and rejects a tampered message, signature or key', () => {
    const key = generateSigningKey();
    const message = Buffer.from('edgefleet manifest bytes');
    const { sig } = signBytes(message, key);
    expect(verifyBytes(message, sig, key.publicKey)).toBe(true);

    for (let i = 0; i < message.length; i++) {
      const tampered = Buffer.from(message);
      tampered[i] = tampered[i]! ^ 0x01;
      expect(verifyBytes(tampered, sig, key.publicKey)).toBe(false);
    }
    const badSig = Buffer.from(sig, 'base64');
    badSig[10] = badSig[10]! ^ 0x80;
    expect(verifyBytes(message, badSig.toString('base64'), key.publicKey)).toBe(false);
    expect(verifyBytes(message, sig, generateSigningKey().publicKey)).toBe(false);
  });

  it('answers false, never throws, for malformed keys and signatures', () => {
    const key = generateSigningKey();
    const message = Buffer.from('x');
    const { sig } = signBytes(message, key);
    expect(verifyBytes(message, sig, Buffer.alloc(31).toString('base64'))).toBe(false);
    expect(verifyBytes(message, sig, '')).toBe(false);
    expect(verifyBytes(message, sig.slice(0, 40), key.publicKey)).toBe(false);
    expect(verifyBytes(message, '', key.publicKey)).toBe(false);
  });

  it('sha256Hex matches the FIPS 180-2 "abc" vector for Buffers and Uint8Arrays', () => {
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256Hex(Buffer.from('abc'))).toBe(abc);
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe(abc);
  });
});
