import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../../shared/canonical-json.js';
import { generateSigningKey, type SigningKey, sha256Hex, signBytes } from '../../../shared/crypto/signing.js';
import { parseFirmwareProfile } from '../../../shared/firmware-profile.js';
import {
  MANIFEST_SCHEMA,
  type Manifest,
  ManifestError,
  signedPayload,
  signManifest,
  type UnsignedManifestInput,
  type VerifyManifestOptions,
  verifyArtifact,
  verifyArtifactBytes,
  verifyManifest,
} from '../../../shared/manifest.js';

const NOW = new Date('2026-06-01T00:00:00.000Z');
const KEY = generateSigningKey();
const OTHER_KEY = generateSigningKey();
const ARTIFACT = Buffer.from('pretend these are ONNX bytes');

const profile = (id: string) =>
  parseFirmwareProfile(
    JSON.parse(readFileSync(new URL(`../../../firmware-profiles/${id}.json`, import.meta.url), 'utf8')),
  );
const CPU = profile('x86_64-cpu'); // accepts default, fp32; max 256 MiB
const JETSON = profile('jetson-orin'); // accepts fp16 too

function unsigned(overrides: Partial<UnsignedManifestInput> = {}): UnsignedManifestInput {
  return {
    schema: MANIFEST_SCHEMA,
    name: 'demo',
    version: 2,
    artifact: { sha256: sha256Hex(ARTIFACT), size: ARTIFACT.length },
    inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'output', dtype: 'float32', shape: ['batch', 2] }],
    opset: 13,
    createdAt: '2026-05-01T00:00:00.000Z',
    expiresAt: '2027-05-01T00:00:00.000Z',
    golden: {
      inputs: [{ name: 'input', dtype: 'float32', shape: [1, 4], data: [0.5, -1, 2, 0] }],
      outputs: [{ name: 'output', dtype: 'float32', shape: [1, 2], data: [0.25, 0.75] }],
      tolerance: { abs: 1e-4, rel: 1e-3 },
    },
    labels: { note: 'naïve café' },
    ...overrides,
  };
}

function signed(overrides: Partial<UnsignedManifestInput> = {}, key: SigningKey = KEY): Manifest {
  return signManifest(unsigned(overrides), key);
}

function raw(overrides: Partial<UnsignedManifestInput> = {}, key: SigningKey = KEY): string {
  return JSON.stringify(signed(overrides, key));
}

/** Edit the JSON after signing (what an attacker or a corrupting hop would do). */
function tamper(text: string, edit: (m: any) => void): string {
  const m = JSON.parse(text);
  edit(m);
  return JSON.stringify(m);
}

/** A base64 signature with one bit of its first byte flipped. */
function flipBit(sigB64: string): string {
  const bytes = Buffer.from(sigB64, 'base64');
  bytes[0] = bytes[0]! ^ 1;
  return bytes.toString('base64');
}

function options(overrides: Partial<VerifyManifestOptions> = {}): VerifyManifestOptions {
  return {
    trustedKeys: [{ keyid: KEY.keyid, publicKey: KEY.publicKey }],
    maxManifestBytes: 64 * 1024,
    installedVersion: null,
    now: NOW,
    profile: CPU,
    ...overrides,
  };
}

function failure(fn: () => unknown): ManifestError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestError);
    return err as ManifestError;
  }
  throw new Error('expected a ManifestError, but verification passed');
}

describe('signManifest', () => {
  it('fills defaults and signs the canonical JSON of everything but the signatures', () => {
    const m = signed();
    expect(m).toMatchObject({ variant: 'default', referenceStats: null });
    expect(m.artifact.mediaType).toBe('application/onnx');
    expect(m.signatures).toEqual([{ keyid: KEY.keyid, sig: expect.any(String) }]);
    const { signatures: _s, ...rest } = m;
    expect(signedPayload(m).toString('utf8')).toBe(canonicalize(rest));
  });

  it('refuses to sign something that is not a manifest', () => {
    expect(() => signManifest({ ...unsigned(), version: 0 }, KEY)).toThrow();
  });
});

describe('verifyManifest', () => {
  it('accepts a good manifest and returns it typed', () => {
    expect(verifyManifest(raw(), options())).toEqual(signed());
  });

  it('verifies regardless of key order and whitespace (the signature is over canonical JSON)', () => {
    const m = signed();
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(m).reverse()), null, 3);
    expect(verifyManifest(reordered, options())).toEqual(m);
  });

  it('a signer may leave out fields with defaults: it verifies and the defaults apply', () => {
    const document = JSON.parse(raw({ labels: {} }));
    delete document.signatures;
    delete document.variant;
    delete document.labels;
    delete document.referenceStats;
    delete document.artifact.mediaType;
    const text = JSON.stringify({
      ...document,
      signatures: [signBytes(Buffer.from(canonicalize(document)), KEY)],
    });
    const manifest = verifyManifest(text, options());
    expect(manifest.variant).toBe('default');
    expect(manifest.labels).toEqual({});
  });

  it('removing fields after signing is a change like any other, even default-valued ones', () => {
    const text = tamper(raw({ labels: {} }), (m) => {
      delete m.variant;
    });
    expect(() => verifyManifest(text, options())).toThrow(
      expect.objectContaining({ code: 'signature_invalid' }),
    );
  });

  it('refuses a field added after signing: the signature covers the document as received', () => {
    const text = tamper(raw(), (m) => {
      m.injected = 'unsigned';
    });
    expect(() => verifyManifest(text, options())).toThrow(
      expect.objectContaining({ code: 'signature_invalid' }),
    );
  });

  it('accepts a signed field this version does not know (a newer fleet), without passing it on', () => {
    const newer = { ...JSON.parse(raw()), futureField: { rolloutHint: 'x' } };
    delete newer.signatures;
    const resigned = { ...newer, signatures: [signBytes(Buffer.from(canonicalize(newer)), KEY)] };
    const manifest = verifyManifest(JSON.stringify(resigned), options());
    expect(manifest.version).toBe(2);
    expect(manifest).not.toHaveProperty('futureField');
  });

  it('accepts any valid signature by a pinned key among several', () => {
    const m = signed();
    const byOther = signBytes(signedPayload(m), OTHER_KEY);
    const both = JSON.stringify({ ...m, signatures: [byOther, ...m.signatures] });
    expect(verifyManifest(both, options()).name).toBe('demo');
    const pinsBoth = options({ trustedKeys: [OTHER_KEY, KEY] });
    const brokenFirst = JSON.stringify({
      ...m,
      signatures: [{ ...byOther, sig: m.signatures[0]!.sig }, ...m.signatures],
    });
    expect(verifyManifest(brokenFirst, pinsBoth).name).toBe('demo');
  });

  describe('each failure has its own code and says what was expected and found', () => {
    it('too large: counted in UTF-8 bytes, the limit itself allowed', () => {
      const text = raw();
      const bytes = Buffer.byteLength(text);
      expect(bytes).toBeGreaterThan(text.length); // the label has non-ASCII characters
      expect(verifyManifest(text, options({ maxManifestBytes: bytes })).name).toBe('demo');
      const err = failure(() => verifyManifest(text, options({ maxManifestBytes: bytes - 1 })));
      expect(err.code).toBe('manifest_too_large');
      expect(err.message).toBe(`manifest is ${bytes} bytes, the limit is ${bytes - 1}`);
    });

    it('invalid JSON', () => {
      const err = failure(() => verifyManifest('{"schema": ', options()));
      expect(err.code).toBe('manifest_invalid');
      expect(err.message).toMatch(/^manifest is not JSON: /);
    });

    it.each([
      ['a missing field', (m: any) => delete m.golden, 'golden'],
      ['a wrong schema id', (m: any) => (m.schema = 'edgefleet.manifest/v2'), 'schema'],
      ['a bad sha256', (m: any) => (m.artifact.sha256 = 'ABC'), 'sha256'],
      ['no signatures', (m: any) => (m.signatures = []), 'signatures'],
      ['a non-integer version', (m: any) => (m.version = 2.5), 'version'],
    ])('schema: %s', (_what, edit, field) => {
      const err = failure(() => verifyManifest(tamper(raw(), edit), options()));
      expect(err.code).toBe('manifest_invalid');
      expect(err.message).toContain(`does not match ${MANIFEST_SCHEMA}`);
      expect(err.message).toContain(field);
    });

    it('signed by a key that is not pinned', () => {
      const err = failure(() => verifyManifest(raw({}, OTHER_KEY), options()));
      expect(err.code).toBe('signature_unknown_key');
      expect(err.message).toContain(OTHER_KEY.keyid.slice(0, 12));
      expect(err.message).toContain(`pinned: ${KEY.keyid.slice(0, 12)}`);
      expect(failure(() => verifyManifest(raw(), options({ trustedKeys: [] }))).message).toContain(
        'pinned: none',
      );
    });

    it.each([
      ['the version', (m: any) => (m.version = 3)],
      ['the artifact hash', (m: any) => (m.artifact.sha256 = sha256Hex(Buffer.from('evil')))],
      ['the expiry', (m: any) => (m.expiresAt = '2099-01-01T00:00:00.000Z')],
      ['a golden value', (m: any) => (m.golden.outputs[0].data[0] = 0.26)],
      ['a label', (m: any) => (m.labels.note = 'naive cafe')],
      ['the signature itself', (m: any) => (m.signatures[0].sig = flipBit(m.signatures[0].sig))],
    ])('bad signature after changing %s', (_what, edit) => {
      const err = failure(() => verifyManifest(tamper(raw(), edit), options()));
      expect(err.code).toBe('signature_invalid');
      expect(err.message).toContain(KEY.keyid.slice(0, 12));
    });

    it('not newer than the installed version, unless a signed rollback allows older', () => {
      const err = failure(() => verifyManifest(raw({ version: 2 }), options({ installedVersion: 5 })));
      expect(err.code).toBe('version_not_newer');
      expect(err.message).toBe('demo v2 is not newer than the installed v5');
      expect(
        verifyManifest(raw({ version: 2 }), options({ installedVersion: 5, allowOlder: true })).version,
      ).toBe(2);
      expect(verifyManifest(raw({ version: 6 }), options({ installedVersion: 5 })).version).toBe(6);
    });

    it('already installed (even when older is allowed)', () => {
      for (const allowOlder of [false, true]) {
        const err = failure(() => verifyManifest(raw(), options({ installedVersion: 2, allowOlder })));
        expect(err.code).toBe('version_already_installed');
        expect(err.message).toBe('demo v2 is already installed');
      }
    });

    it('asks for the installed version by the manifest name when given a function', () => {
      const asked: string[] = [];
      const installedVersion = (name: string) => {
        asked.push(name);
        return 3;
      };
      expect(failure(() => verifyManifest(raw(), options({ installedVersion }))).code).toBe(
        'version_not_newer',
      );
      expect(asked).toEqual(['demo']);
    });

    it('expired: at or after expiresAt by the device clock', () => {
      const text = raw({ expiresAt: NOW.toISOString() });
      const err = failure(() => verifyManifest(text, options()));
      expect(err.code).toBe('manifest_expired');
      expect(err.message).toBe(`manifest expired at ${NOW.toISOString()} (device time ${NOW.toISOString()})`);
      expect(verifyManifest(text, options({ now: new Date(NOW.getTime() - 1) })).name).toBe('demo');
    });

    it('too big for the profile', () => {
      const size = CPU.maxModelBytes + 1;
      const err = failure(() =>
        verifyManifest(raw({ artifact: { sha256: sha256Hex(ARTIFACT), size } }), options()),
      );
      expect(err.code).toBe('profile_incompatible');
      expect(err.message).toBe(
        `model is ${size} bytes, profile x86_64-cpu allows at most ${CPU.maxModelBytes}`,
      );
    });

    it('variant not accepted by the profile', () => {
      const text = raw({ variant: 'fp16' });
      const err = failure(() => verifyManifest(text, options()));
      expect(err.code).toBe('profile_incompatible');
      expect(err.message).toBe(
        "variant 'fp16' is not accepted by profile x86_64-cpu (accepts default, fp32)",
      );
      expect(verifyManifest(text, options({ profile: JETSON })).variant).toBe('fp16');
    });

    it('failures are fatal, not retryable', () => {
      expect(failure(() => verifyManifest(raw({}, OTHER_KEY), options())).retryable).toBe(false);
    });
  });

  describe('checks run in order: the first failing check is the one reported', () => {
    const expired = { expiresAt: '2026-01-01T00:00:00.000Z' };
    it.each([
      {
        what: 'size before everything (oversize, unknown key, expired)',
        text: () => raw(expired, OTHER_KEY),
        opts: (t: string) => options({ maxManifestBytes: Buffer.byteLength(t) - 1 }),
        code: 'manifest_too_large',
      },
      {
        what: 'size before JSON parsing',
        text: () => `{${' '.repeat(100)}`,
        opts: () => options({ maxManifestBytes: 50 }),
        code: 'manifest_too_large',
      },
      {
        what: 'schema before signature',
        text: () => tamper(raw({}, OTHER_KEY), (m) => delete m.opset),
        opts: () => options(),
        code: 'manifest_invalid',
      },
      {
        what: 'unknown key before expiry',
        text: () => raw(expired, OTHER_KEY),
        opts: () => options(),
        code: 'signature_unknown_key',
      },
      {
        what: 'unknown key before version',
        text: () => raw({}, OTHER_KEY),
        opts: () => options({ installedVersion: 2 }),
        code: 'signature_unknown_key',
      },
      {
        what: 'bad signature before version and expiry',
        text: () => tamper(raw(expired), (m) => (m.version = 1)),
        opts: () => options({ installedVersion: 2 }),
        code: 'signature_invalid',
      },
      {
        what: 'version before expiry',
        text: () => raw(expired),
        opts: () => options({ installedVersion: 2 }),
        code: 'version_already_installed',
      },
      {
        what: 'expiry before profile',
        text: () => raw({ ...expired, variant: 'fp16' }),
        opts: () => options(),
        code: 'manifest_expired',
      },
    ])('$what → $code', ({ text, opts, code }) => {
      const t = text();
      expect(failure(() => verifyManifest(t, opts(t))).code).toBe(code);
    });

    it('profile size before variant', () => {
      const text = raw({
        variant: 'fp16',
        artifact: { sha256: sha256Hex(ARTIFACT), size: CPU.maxModelBytes + 1 },
      });
      expect(failure(() => verifyManifest(text, options())).message).toMatch(/^model is \d+ bytes/);
    });
  });
});

describe('verifyArtifact', () => {
  const m = signed();

  it('accepts the signed length and hash', () => {
    expect(() => verifyArtifact(m, { size: ARTIFACT.length, sha256: sha256Hex(ARTIFACT) })).not.toThrow();
    expect(() => verifyArtifactBytes(m, ARTIFACT)).not.toThrow();
  });

  it('checks length first, then the hash', () => {
    const wrongBoth = failure(() => verifyArtifact(m, { size: 3, sha256: sha256Hex(Buffer.from('abc')) }));
    expect(wrongBoth.code).toBe('artifact_size_mismatch');
    expect(wrongBoth.message).toBe(`artifact is 3 bytes, the manifest says ${ARTIFACT.length}`);

    const same = Buffer.from(ARTIFACT);
    same[0] = same[0]! ^ 1;
    const wrongHash = failure(() => verifyArtifactBytes(m, same));
    expect(wrongHash.code).toBe('artifact_sha256_mismatch');
    expect(wrongHash.message).toContain(sha256Hex(same).slice(0, 16));
    expect(wrongHash.message).toContain(m.artifact.sha256.slice(0, 16));
  });
});
