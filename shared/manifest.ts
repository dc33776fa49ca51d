/**
 * The model manifest: what a model version is, signed by the fleet and verified by every device.
 *
 * Verification follows the TUF client's order, each failure its own error code:
 *   size limit → schema → signature by a pinned key → version strictly newer (equal is a no-op) →
 *   not expired → fits the firmware profile; and, after download, artifact length → sha256.
 * The signed bytes are the canonical JSON of the manifest without its `signatures` field.
 */
import { z } from 'zod';
import { canonicalBytes } from './canonical-json.js';
import { type PublicKeyInfo, type SigningKey, sha256Hex, signBytes, verifyBytes } from './crypto/signing.js';
import { EdgefleetError } from './errors.js';
import type { FirmwareProfile } from './firmware-profile.js';
import {
  MANIFEST_SCHEMA,
  type Manifest,
  ManifestSchema,
  type UnsignedManifest,
  type UnsignedManifestInput,
  UnsignedManifestSchema,
} from './manifest-schema.js';

// The schemas live apart (zod only) so the wire contract can use them without signing code.
export * from './manifest-schema.js';

/** A manifest verification failure. `code` is what devices report and rollout status shows. */
export class ManifestError extends EdgefleetError {
  override readonly name = 'ManifestError';
}

export type ManifestErrorCode =
  | 'manifest_too_large'
  | 'manifest_invalid'
  | 'signature_unknown_key'
  | 'signature_invalid'
  | 'version_not_newer'
  | 'version_already_installed'
  | 'manifest_expired'
  | 'profile_incompatible'
  | 'artifact_size_mismatch'
  | 'artifact_sha256_mismatch';

function fail(code: ManifestErrorCode, message: string): never {
  throw new ManifestError(code, message);
}

export function signedPayload(manifest: UnsignedManifest | Manifest): Buffer {
  const { signatures: _ignored, ...unsigned } = manifest as Manifest;
  return canonicalBytes(unsigned);
}

export function signManifest(unsigned: UnsignedManifestInput, key: SigningKey): Manifest {
  const parsed = UnsignedManifestSchema.parse(unsigned);
  return { ...parsed, signatures: [signBytes(signedPayload(parsed), key)] };
}

export interface VerifyManifestOptions {
  /** Public keys the device pinned at enrollment. */
  trustedKeys: readonly PublicKeyInfo[];
  /** Largest manifest document accepted, in bytes. */
  maxManifestBytes: number;
  /** Version currently installed for this model name, if any (a function when the name is not known yet). */
  installedVersion: number | null | ((name: string) => number | null);
  now: Date;
  profile: FirmwareProfile;
  /** A signed rollback command may install an older version. */
  allowOlder?: boolean;
}

/**
 * Verify a manifest as received (its raw JSON text), in the fixed order. Returns the typed manifest;
 * throws ManifestError with a specific code otherwise.
 */
export function verifyManifest(raw: string, options: VerifyManifestOptions): Manifest {
  const bytes = Buffer.byteLength(raw, 'utf8');
  if (bytes > options.maxManifestBytes) {
    fail('manifest_too_large', `manifest is ${bytes} bytes, the limit is ${options.maxManifestBytes}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    fail('manifest_invalid', `manifest is not JSON: ${(err as Error).message}`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    fail('manifest_invalid', `manifest does not match ${MANIFEST_SCHEMA}: ${z.prettifyError(parsed.error)}`);
  }
  const manifest = parsed.data;

  // The signature covers the document as received, not the schema's view of it: a field a newer fleet
  // signs and this agent does not know must not break verification.
  const { signatures: _signatures, ...receivedUnsigned } = json as Record<string, unknown>;
  const payload = canonicalBytes(receivedUnsigned);
  const trusted = new Map(options.trustedKeys.map((k) => [k.keyid, k.publicKey]));
  const known = manifest.signatures.filter((s) => trusted.has(s.keyid));
  if (known.length === 0) {
    fail(
      'signature_unknown_key',
      `manifest is signed by key(s) ${manifest.signatures.map((s) => s.keyid.slice(0, 12)).join(', ')}, none of which is pinned (pinned: ${[...trusted.keys()].map((k) => k.slice(0, 12)).join(', ') || 'none'})`,
    );
  }
  if (!known.some((s) => verifyBytes(payload, s.sig, trusted.get(s.keyid)!))) {
    fail(
      'signature_invalid',
      `signature by key ${known[0]!.keyid.slice(0, 12)} does not match the manifest content`,
    );
  }

  const installed =
    typeof options.installedVersion === 'function'
      ? options.installedVersion(manifest.name)
      : options.installedVersion;
  if (installed !== null) {
    if (manifest.version === installed) {
      fail('version_already_installed', `${manifest.name} v${manifest.version} is already installed`);
    }
    if (manifest.version < installed && !options.allowOlder) {
      fail(
        'version_not_newer',
        `${manifest.name} v${manifest.version} is not newer than the installed v${installed}`,
      );
    }
  }

  const expires = Date.parse(manifest.expiresAt);
  if (expires <= options.now.getTime()) {
    fail(
      'manifest_expired',
      `manifest expired at ${manifest.expiresAt} (device time ${options.now.toISOString()})`,
    );
  }

  const { profile } = options;
  if (manifest.artifact.size > profile.maxModelBytes) {
    fail(
      'profile_incompatible',
      `model is ${manifest.artifact.size} bytes, profile ${profile.id} allows at most ${profile.maxModelBytes}`,
    );
  }
  if (!profile.acceptsVariants.includes(manifest.variant)) {
    fail(
      'profile_incompatible',
      `variant '${manifest.variant}' is not accepted by profile ${profile.id} (accepts ${profile.acceptsVariants.join(', ')})`,
    );
  }
  return manifest;
}

/** After download: the artifact must have exactly the signed length and sha256. */
export function verifyArtifact(manifest: Manifest, artifact: { size: number; sha256: string }): void {
  if (artifact.size !== manifest.artifact.size) {
    fail(
      'artifact_size_mismatch',
      `artifact is ${artifact.size} bytes, the manifest says ${manifest.artifact.size}`,
    );
  }
  if (artifact.sha256 !== manifest.artifact.sha256) {
    fail(
      'artifact_sha256_mismatch',
      `artifact sha256 is ${artifact.sha256.slice(0, 16)}…, the manifest says ${manifest.artifact.sha256.slice(0, 16)}…`,
    );
  }
}

export function verifyArtifactBytes(manifest: Manifest, bytes: Buffer): void {
  verifyArtifact(manifest, { size: bytes.length, sha256: sha256Hex(bytes) });
}
