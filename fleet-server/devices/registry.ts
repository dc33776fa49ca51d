/**
 * Devices and their enrollment: one-time enrollment tokens (stored hashed, expiring, carrying tags and a
 * profile), device records (tags, profile, facts, MQTT secret as a scrypt hash, what the device last
 * reported), and the credential check the broker asks on every device connection.
 */
import { randomBytes } from 'node:crypto';
import type { EnrollRequest, EnrollResponse } from '../../shared/api/enroll.js';
import type { PublicKeyInfo } from '../../shared/crypto/signing.js';
import { AuthenticationError, NotFoundError, ValidationError } from '../../shared/errors.js';
import type { FirmwareProfile } from '../../shared/firmware-profile.js';
import type { ActiveModel, StatusMessage, TelemetryMessage } from '../../shared/protocol/messages.js';
import type { Collection } from '../store/db.js';
import { KeyedMutex } from '../store/lock.js';
import { hashSecret, randomSecret, type ScryptHash, tokenDigest, verifySecret } from './secrets.js';

export const DEFAULT_PROFILE = 'x86_64-cpu';

export interface EnrollmentTokenRecord {
  id: string;
  digest: string;
  name: string | null;
  tags: Record<string, string>;
  profile: string | null;
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
  usedBy: string | null;
}

export interface DeviceRecord {
  id: string;
  tags: Record<string, string>;
  profile: string;
  facts: EnrollRequest['facts'];
  enrolledAt: string;
  secret: ScryptHash;
  online: boolean;
  lastSeen: string | null;
  agentVersion: string | null;
  models: ActiveModel[];
  telemetry: TelemetryMessage | null;
}

export type DeviceView = Omit<DeviceRecord, 'secret' | 'online'> & {
  status: 'online' | 'offline' | 'never_seen';
};

export interface Clock {
  now(): Date;
}

export class DeviceRegistry {
  /** Verified device secrets, keyed by device id → digest of the secret, so HTTP downloads skip scrypt. */
  private readonly verified = new Map<string, string>();
  /** Read-modify-writes that race: status, telemetry and touches of one device (keyed by device id), and
   *  claims of one enrollment token (keyed `enrollment-token:<digest>`). */
  private readonly lock = new KeyedMutex();

  constructor(
    private readonly devices: Collection<DeviceRecord>,
    private readonly tokens: Collection<EnrollmentTokenRecord>,
    private readonly profiles: Map<string, FirmwareProfile>,
    private readonly clock: Clock,
  ) {}

  profileIds(): string[] {
    return [...this.profiles.keys()];
  }

  async createEnrollmentToken(options: {
    tags: Record<string, string>;
    profile?: string | undefined;
    expiresInSeconds: number;
    name?: string | undefined;
  }): Promise<{
    id: string;
    token: string;
    expiresAt: string;
    tags: Record<string, string>;
    profile: string | null;
  }> {
    if (options.profile !== undefined && !this.profiles.has(options.profile)) {
      throw new ValidationError(
        `unknown firmware profile '${options.profile}' (known: ${this.profileIds().join(', ')})`,
        { code: 'unknown_profile' },
      );
    }
    const token = `eft_${randomSecret(24)}`;
    const now = this.clock.now();
    const record: EnrollmentTokenRecord = {
      id: randomBytes(8).toString('hex'),
      digest: tokenDigest(token),
      name: options.name ?? null,
      tags: options.tags,
      profile: options.profile ?? null,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + options.expiresInSeconds * 1000).toISOString(),
      usedAt: null,
      usedBy: null,
    };
    await this.tokens.put(record.digest, record);
    return { id: record.id, token, expiresAt: record.expiresAt, tags: record.tags, profile: record.profile };
  }

  async enroll(
    request: EnrollRequest,
    context: { trustedKeys: PublicKeyInfo[]; serverUrl: string; mqttUrl: string },
  ): Promise<EnrollResponse> {
    const digest = tokenDigest(request.token);
    // Claim the token under a lock: concurrent requests with one token must not all pass the "unused" check.
    const { token, profileId, profile, now } = await this.lock.run(`enrollment-token:${digest}`, () =>
      this.claimToken(digest, request.profile),
    );
    const deviceId = `dev-${randomBytes(6).toString('hex')}`;
    const password = randomSecret(32);
    const record: DeviceRecord = {
      id: deviceId,
      tags: token.tags,
      profile: profileId,
      facts: request.facts,
      enrolledAt: now.toISOString(),
      secret: await hashSecret(password),
      online: false,
      lastSeen: null,
      agentVersion: request.facts.agentVersion ?? null,
      models: [],
      telemetry: null,
    };
    await this.devices.put(deviceId, record);
    await this.tokens.put(digest, { ...token, usedAt: now.toISOString(), usedBy: deviceId });
    return {
      deviceId,
      mqtt: { url: context.mqttUrl, username: deviceId, password },
      trustedKeys: context.trustedKeys,
      serverUrl: context.serverUrl,
      profile,
      tags: token.tags,
    };
  }

  private async claimToken(digest: string, requestedProfile: string | undefined) {
    const token = await this.tokens.get(digest);
    const now = this.clock.now();
    if (!token) throw new AuthenticationError('enrollment token is not valid', 'enrollment_token_invalid');
    if (token.usedAt)
      throw new AuthenticationError(
        `enrollment token was already used at ${token.usedAt}`,
        'enrollment_token_used',
      );
    if (Date.parse(token.expiresAt) <= now.getTime()) {
      throw new AuthenticationError(
        `enrollment token expired at ${token.expiresAt}`,
        'enrollment_token_expired',
      );
    }
    const profileId = requestedProfile ?? token.profile ?? DEFAULT_PROFILE;
    const profile = this.profiles.get(profileId);
    if (!profile) {
      throw new ValidationError(
        `unknown firmware profile '${profileId}' (known: ${this.profileIds().join(', ')})`,
        { code: 'unknown_profile' },
      );
    }
    // Mark the token used before the device exists: a crash in between wastes a token, never reuses one.
    await this.tokens.put(digest, { ...token, usedAt: now.toISOString() });
    return { token, profileId, profile, now };
  }

  /** The broker's and the artifact route's credential check. */
  async verifyDevice(deviceId: string, secret: string): Promise<boolean> {
    const digest = tokenDigest(secret);
    if (this.verified.get(deviceId) === digest) return true;
    const device = await this.devices.get(deviceId);
    if (!device || !(await verifySecret(secret, device.secret))) return false;
    this.verified.set(deviceId, digest);
    return true;
  }

  async get(id: string): Promise<DeviceRecord> {
    const device = await this.devices.get(id);
    if (!device) throw new NotFoundError('device', id);
    return device;
  }

  async find(id: string): Promise<DeviceRecord | undefined> {
    return this.devices.get(id);
  }

  /**
   * One page of devices in id order, after `after`, matching the filters: reads only as far as it must to
   * fill the page (in chunks), so the first page of 10,000 devices costs about what listing 100 does.
   * `next` is the id to continue after, or null at the end.
   */
  async page(options: {
    limit: number;
    after?: string | undefined;
    tags?: Record<string, string>;
    status?: 'online' | 'offline' | undefined;
    /** Substring of the device id, profile or a tag value. */
    search?: string | undefined;
  }): Promise<{ devices: DeviceRecord[]; next: string | null }> {
    const matches = (d: DeviceRecord) =>
      Object.entries(options.tags ?? {}).every(([k, v]) => d.tags[k] === v) &&
      (options.status === undefined || viewOf(d).status === options.status) &&
      (options.search === undefined ||
        d.id.includes(options.search) ||
        d.profile.includes(options.search) ||
        Object.values(d.tags).some((v) => v.includes(options.search!)));
    const devices: DeviceRecord[] = [];
    let after = options.after;
    const chunk = Math.max(options.limit, 200);
    for (;;) {
      const batch = await this.devices.range({ after, limit: chunk });
      for (const [key, device] of batch) {
        after = key;
        if (!matches(device)) continue;
        devices.push(device);
        if (devices.length === options.limit) return { devices, next: key };
      }
      if (batch.length < chunk) return { devices, next: null };
    }
  }

  async list(
    filter: { tags?: Record<string, string>; status?: 'online' | 'offline' } = {},
  ): Promise<DeviceRecord[]> {
    const all = await this.devices.values();
    return all.filter(
      (d) =>
        Object.entries(filter.tags ?? {}).every(([k, v]) => d.tags[k] === v) &&
        // Filter on the status a device shows: one never seen is neither online nor offline.
        (filter.status === undefined || viewOf(d).status === filter.status),
    );
  }

  applyStatus(deviceId: string, message: StatusMessage): Promise<{ cameOnline: boolean } | undefined> {
    return this.lock.run(deviceId, () => this.applyStatusLocked(deviceId, message));
  }

  private async applyStatusLocked(deviceId: string, message: StatusMessage) {
    const device = await this.devices.get(deviceId);
    if (!device) return undefined;
    const cameOnline = message.online && !device.online;
    await this.devices.put(deviceId, {
      ...device,
      online: message.online,
      lastSeen: this.clock.now().toISOString(),
      agentVersion: message.agentVersion ?? device.agentVersion,
      // The offline will carries no model list; keep the last one known.
      models: message.online ? message.models : device.models,
    });
    return { cameOnline };
  }

  /**
   * At start with the embedded broker nobody is connected yet, whatever the records say: mark everyone
   * offline so each device's first status counts as coming online (which re-sends unfinished installs).
   */
  async markAllOffline(): Promise<void> {
    for (const device of await this.devices.values()) {
      if (!device.online) continue;
      await this.lock.run(device.id, async () => {
        const current = await this.devices.get(device.id);
        if (current?.online) await this.devices.put(device.id, { ...current, online: false });
      });
    }
  }

  applyTelemetry(deviceId: string, message: TelemetryMessage): Promise<void> {
    return this.lock.run(deviceId, async () => {
      const device = await this.devices.get(deviceId);
      if (!device) return;
      await this.devices.put(deviceId, {
        ...device,
        lastSeen: this.clock.now().toISOString(),
        telemetry: message,
      });
    });
  }

  touch(deviceId: string): Promise<void> {
    return this.lock.run(deviceId, async () => {
      const device = await this.devices.get(deviceId);
      if (device) await this.devices.put(deviceId, { ...device, lastSeen: this.clock.now().toISOString() });
    });
  }
}

export function viewOf(device: DeviceRecord): DeviceView {
  const { secret: _secret, online, ...rest } = device;
  return { ...rest, status: online ? 'online' : device.lastSeen ? 'offline' : 'never_seen' };
}
