/**
 * Devices and their enrollment: one-time enrollment tokens (stored hashed, expiring, carrying tags and a
 * profile), device records (tags, profile, facts, MQTT secret as a scrypt hash, what the device last
 * reported), and the credential check the broker asks on every device connection. The device list's
 * filters and the console's counts read an in-memory index of what they look at, not the records.
 */
import { randomBytes } from 'node:crypto';
import type { EnrollRequest, EnrollResponse } from '../../shared/api/enroll.js';
import type { PublicKeyInfo } from '../../shared/crypto/signing.js';
import { AuthenticationError, NotFoundError, ValidationError } from '../../shared/errors.js';
import type { FirmwareProfile } from '../../shared/firmware-profile.js';
import type { ActiveModel, StatusMessage, TelemetryMessage } from '../../shared/protocol/messages.js';
import type { Collection } from '../store/db.js';
import { KeyedMutex } from '../store/lock.js';
import { firstVersion, migrated } from '../store/migrations.js';
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

/** What the device list can be narrowed by; every given condition must hold. */
export interface DeviceFilter {
  tags?: Record<string, string> | undefined;
  status?: 'online' | 'offline' | undefined;
  /** Substring of the device id, profile or a tag value. */
  search?: string | undefined;
  profile?: string | undefined;
  /** Runs this model (any version when `version` is absent), per its last status. */
  model?: { name: string; version?: number | undefined } | undefined;
}

/** Devices by the status they show, by profile and by model version: the console's overview. */
export interface DeviceSummary {
  total: number;
  online: number;
  offline: number;
  neverSeen: number;
  /** Devices per profile, for the profiles some device has. */
  profiles: Map<string, number>;
  /** Devices per model version; a device counts once per version, even if it lists the version twice. */
  versions: { model: string; version: number; devices: number }[];
}

export class DeviceRegistry {
  /** Verified device secrets, keyed by device id → digest of the secret, so HTTP downloads skip scrypt. */
  private readonly verified = new Map<string, string>();
  /** Loaded by one scan on first use (or `load()`), then kept by every write below: see `DeviceIndex`. */
  private indexing: Promise<DeviceIndex> | undefined;
  /** Read-modify-writes that race: status, telemetry and touches of one device (keyed by device id), and
   *  claims of one enrollment token (keyed `enrollment-token:<digest>`). */
  private readonly lock = new KeyedMutex();

  private readonly devices: Collection<DeviceRecord>;
  private readonly tokens: Collection<EnrollmentTokenRecord>;

  /** `devices` and `tokens` as stored: the registry applies their migrations (both v1 so far) to them. */
  constructor(
    devices: Collection<DeviceRecord>,
    tokens: Collection<EnrollmentTokenRecord>,
    private readonly profiles: Map<string, FirmwareProfile>,
    private readonly clock: Clock,
    private readonly options: {
      /** Told when a device's status (online, offline) or model list changes: live updates. */
      onChanged?: (device: DeviceRecord) => void;
    } = {},
  ) {
    this.devices = migrated(devices, firstVersion('devices'));
    this.tokens = migrated(tokens, firstVersion('enrollment-tokens'));
  }

  profileIds(): string[] {
    return [...this.profiles.keys()];
  }

  /** Indexes the devices now (one scan of the collection) rather than on the first request that needs it. */
  async load(): Promise<void> {
    await this.index();
  }

  private index(): Promise<DeviceIndex> {
    this.indexing ??= this.devices.values().then(
      (records) => DeviceIndex.of(records),
      (err: unknown) => {
        this.indexing = undefined; // the next caller tries again
        throw err;
      },
    );
    return this.indexing;
  }

  /**
   * How a device record is written (`importRecords` does the same for a batch): the index follows every
   * write, and is loaded first, so a write never lands in the collection behind a scan in progress.
   */
  private async save(device: DeviceRecord): Promise<void> {
    const index = await this.index();
    await this.devices.put(device.id, device);
    index.set(device);
  }

  /**
   * Writes whole records as given, in one batch, and indexes them: records made elsewhere (a restore, a
   * bench's seeded fleet). A replaced record's cached secret check is dropped, as its secret may differ.
   */
  async importRecords(records: readonly DeviceRecord[]): Promise<void> {
    const index = await this.index();
    await this.devices.putMany(records.map((d) => [d.id, d]));
    for (const d of records) this.verified.delete(d.id);
    index.setMany(records);
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
    // The operator's token has the last word: a device may add tags at install time, never override one.
    const tags = { ...request.tags, ...token.tags };
    const record: DeviceRecord = {
      id: deviceId,
      tags,
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
    await this.save(record);
    await this.tokens.put(digest, { ...token, usedAt: now.toISOString(), usedBy: deviceId });
    return {
      deviceId,
      mqtt: { url: context.mqttUrl, username: deviceId, password },
      trustedKeys: context.trustedKeys,
      serverUrl: context.serverUrl,
      profile,
      tags,
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
   * One page of devices in id order, after `after`, matching the filters: the index names the page's
   * devices and only those records are read, so a page costs about the same at 10,000 devices as at 100,
   * however rare the match. `next` is the id to continue after (the page's last), or null at the end.
   */
  async page(
    options: DeviceFilter & { limit: number; after?: string | undefined },
  ): Promise<{ devices: DeviceRecord[]; next: string | null }> {
    const ids = (await this.index()).matching(options, options.after, options.limit);
    const devices = await this.read(ids, options);
    return { devices, next: ids.length > 0 && ids.length === options.limit ? ids.at(-1)! : null };
  }

  /** Every device matching the filter, in id order; a filtered list reads only the records that match. */
  async list(filter: DeviceFilter = {}): Promise<DeviceRecord[]> {
    if (isEmpty(filter)) return this.devices.values();
    const ids = (await this.index()).matching(filter, undefined, Number.POSITIVE_INFINITY);
    return this.read(ids, filter);
  }

  /** Counts of the whole fleet, from the index: no record is read. */
  async summary(): Promise<DeviceSummary> {
    return (await this.index()).summary();
  }

  /** The records of the ids the index matched, checked again: one may have changed since (a status race). */
  private async read(ids: string[], filter: DeviceFilter): Promise<DeviceRecord[]> {
    if (ids.length === 0) return [];
    const matches = matcherOf(filter);
    return (await this.devices.getMany(ids)).filter((d): d is DeviceRecord => d !== undefined && matches(d));
  }

  applyStatus(deviceId: string, message: StatusMessage): Promise<{ cameOnline: boolean } | undefined> {
    return this.lock.run(deviceId, () => this.applyStatusLocked(deviceId, message));
  }

  private async applyStatusLocked(deviceId: string, message: StatusMessage) {
    const device = await this.devices.get(deviceId);
    if (!device) return undefined;
    const cameOnline = message.online && !device.online;
    const next: DeviceRecord = {
      ...device,
      online: message.online,
      lastSeen: this.clock.now().toISOString(),
      agentVersion: message.agentVersion ?? device.agentVersion,
      // The offline will carries no model list; keep the last one known.
      models: message.online ? message.models : device.models,
    };
    await this.save(next);
    if (statusOf(next) !== statusOf(device) || !sameModels(next.models, device.models))
      this.options.onChanged?.(next);
    return { cameOnline };
  }

  /**
   * At start with the embedded broker nobody is connected yet, whatever the records say: mark everyone
   * offline so each device's first status counts as coming online (which re-sends unfinished installs).
   */
  async markAllOffline(): Promise<void> {
    // The index knows who is online (its status is the record's `online`): only their records are read.
    const online = (await this.index()).matching({ status: 'online' }, undefined, Number.POSITIVE_INFINITY);
    for (const id of online) {
      await this.lock.run(id, async () => {
        const current = await this.devices.get(id);
        if (current?.online) await this.save({ ...current, online: false });
      });
    }
  }

  applyTelemetry(deviceId: string, message: TelemetryMessage): Promise<void> {
    return this.lock.run(deviceId, async () => {
      const device = await this.devices.get(deviceId);
      if (!device) return;
      // lastSeen moves a never-seen device to offline: through `save`, so the index follows.
      await this.save({ ...device, lastSeen: this.clock.now().toISOString(), telemetry: message });
    });
  }

  touch(deviceId: string): Promise<void> {
    return this.lock.run(deviceId, async () => {
      const device = await this.devices.get(deviceId);
      if (device) await this.save({ ...device, lastSeen: this.clock.now().toISOString() });
    });
  }
}

export function viewOf(device: DeviceRecord): DeviceView {
  const { secret: _secret, online: _online, ...rest } = device;
  return { ...rest, status: statusOf(device) };
}

/** The status a device shows: one never seen is neither online nor offline. */
export function statusOf(device: DeviceRecord): DeviceView['status'] {
  return device.online ? 'online' : device.lastSeen ? 'offline' : 'never_seen';
}

/** The test a device filter applies to a record: the index's test, on the record's index entry. */
export function matcherOf(filter: DeviceFilter): (device: DeviceRecord) => boolean {
  const matches = entryMatcherOf(filter);
  return (d) => matches(entryOf(d));
}

/** The test a device filter applies, shared by the index, the paged and the whole list so all agree. */
function entryMatcherOf(filter: DeviceFilter): (entry: IndexEntry) => boolean {
  const { tags = {}, status, search, profile, model } = filter;
  const wanted = Object.entries(tags);
  return (d) =>
    wanted.every(([k, v]) => d.tags[k] === v) &&
    (status === undefined || d.status === status) &&
    (profile === undefined || d.profile === profile) &&
    (model === undefined ||
      d.models.some(
        (m) => m.name === model.name && (model.version === undefined || m.version === model.version),
      )) &&
    (search === undefined ||
      (d.text.includes(search) &&
        (d.id.includes(search) ||
          d.profile.includes(search) ||
          Object.values(d.tags).some((v) => v.includes(search)))));
}

function isEmpty(filter: DeviceFilter): boolean {
  return (
    Object.keys(filter.tags ?? {}).length === 0 &&
    filter.status === undefined &&
    filter.search === undefined &&
    filter.profile === undefined &&
    filter.model === undefined
  );
}

/**
 * One device as its filters and the overview's counts see it: what the device list narrows by, without
 * facts, secret or the last telemetry (with its histograms, most of a record's bytes). About 400 B of heap
 * a device (measured: id, four short tags, profile, status, one or two model versions, the search text),
 * so about 4 MB at 10,000 devices: small beside reading and decoding every record per request.
 */
interface IndexEntry {
  readonly id: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly profile: string;
  readonly status: DeviceView['status'];
  readonly models: readonly { readonly name: string; readonly version: number }[];
  /** Id, profile and tag values in one string: a search tests it once, and the fields only if it matched
   *  (one substring test a device instead of six keeps a search of 10,000 devices about a millisecond). */
  readonly text: string;
}

function entryOf(device: DeviceRecord): IndexEntry {
  return {
    id: device.id,
    tags: { ...device.tags }, // a copy: the caller's object may change later (an imported record's)
    profile: device.profile,
    status: statusOf(device),
    models: device.models.map(({ name, version }) => ({ name, version })),
    text: [device.id, device.profile, ...Object.values(device.tags)].join('\n'),
  };
}

/**
 * Every device's index entry, in id order (LevelDB's key order: device ids are ASCII, where byte order and
 * JavaScript's string order agree), and the overview's counts, kept as entries come and go. A page is a
 * walk from a binary search; the counts are read, not counted.
 */
class DeviceIndex {
  private readonly entries: IndexEntry[] = [];
  private readonly statuses = { online: 0, offline: 0, never_seen: 0 };
  private readonly profiles = new Map<string, number>();
  /** By `name@version`. */
  private readonly versions = new Map<string, { model: string; version: number; devices: number }>();

  /** Records as `Collection.values` gives them: already in key order. */
  static of(records: readonly DeviceRecord[]): DeviceIndex {
    const index = new DeviceIndex();
    index.setMany(records);
    return index;
  }

  set(device: DeviceRecord): void {
    const entry = entryOf(device);
    const i = firstAtOrAfter(this.entries, device.id);
    if (this.entries[i]?.id === device.id) this.replace(i, entry);
    else this.entries.splice(i, 0, entry);
    this.count(entry, 1);
  }

  /** Many at once: new ids are appended, then sorted once, rather than spliced in one by one. */
  setMany(devices: readonly DeviceRecord[]): void {
    const added = new Map<string, IndexEntry>();
    for (const device of devices) {
      const entry = entryOf(device);
      const i = firstAtOrAfter(this.entries, device.id);
      if (this.entries[i]?.id !== device.id) {
        added.set(device.id, entry); // the last of repeated ids wins, as in a batch
        continue;
      }
      this.replace(i, entry);
      this.count(entry, 1);
    }
    if (added.size === 0) return;
    for (const entry of added.values()) {
      this.entries.push(entry);
      this.count(entry, 1);
    }
    this.entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private replace(i: number, entry: IndexEntry): void {
    this.count(this.entries[i]!, -1);
    this.entries[i] = entry;
  }

  /** Adds an entry to the counts (`by` 1) or takes it out (-1); a count that reaches 0 goes. */
  private count(entry: IndexEntry, by: 1 | -1): void {
    this.statuses[entry.status] += by;
    const profile = (this.profiles.get(entry.profile) ?? 0) + by;
    if (profile === 0) this.profiles.delete(entry.profile);
    else this.profiles.set(entry.profile, profile);
    // A device counts once per version, even if it lists the version twice.
    entry.models.forEach((m, i) => {
      if (entry.models.findIndex((x) => x.name === m.name && x.version === m.version) !== i) return;
      const key = `${m.name}@${m.version}`;
      const version = this.versions.get(key) ?? { model: m.name, version: m.version, devices: 0 };
      version.devices += by;
      if (version.devices === 0) this.versions.delete(key);
      else this.versions.set(key, version);
    });
  }

  /** The ids of the first `limit` entries after `after` that match the filter. */
  matching(filter: DeviceFilter, after: string | undefined, limit: number): string[] {
    const matches = entryMatcherOf(filter);
    const ids: string[] = [];
    let i = after === undefined ? 0 : firstAtOrAfter(this.entries, after);
    if (after !== undefined && this.entries[i]?.id === after) i++;
    for (; i < this.entries.length && ids.length < limit; i++) {
      const entry = this.entries[i]!;
      if (matches(entry)) ids.push(entry.id);
    }
    return ids;
  }

  summary(): DeviceSummary {
    return {
      total: this.entries.length,
      online: this.statuses.online,
      offline: this.statuses.offline,
      neverSeen: this.statuses.never_seen,
      profiles: new Map(this.profiles),
      versions: [...this.versions.values()].map((v) => ({ ...v })),
    };
  }
}

/** The position of the first entry whose id is `id` or sorts after it (binary search). */
function firstAtOrAfter(entries: readonly IndexEntry[], id: string): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sameModels(a: readonly ActiveModel[], b: readonly ActiveModel[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (m, i) =>
        m.name === b[i]!.name &&
        m.version === b[i]!.version &&
        m.executionProvider === b[i]!.executionProvider,
    )
  );
}
