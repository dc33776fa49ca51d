/**
 * DeviceRegistry over a real LevelDB: one-time enrollment (also under concurrent use of one token), secrets
 * at rest, the credential check the broker and artifact route share, and how status / telemetry reports
 * move a device record.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../../../fleet-server/devices/profiles.js';
import {
  type DeviceRecord,
  DeviceRegistry,
  type EnrollmentTokenRecord,
  viewOf,
} from '../../../../fleet-server/devices/registry.js';
import { generateSigningKey, publicInfoOf } from '../../../../shared/crypto/signing.js';
import type { EdgefleetError } from '../../../../shared/errors.js';
import type { StatusMessage } from '../../../../shared/protocol/messages.js';
import { codeOf } from '../../../support/errors.js';
import { REPO_PROFILES } from '../../../support/fleet.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';
import { quietTelemetry as telemetry } from './messages.js';

const context = {
  trustedKeys: [publicInfoOf(generateSigningKey().privateKeyPem)],
  serverUrl: 'http://fleet.test',
  mqttUrl: 'mqtt://fleet.test:1883',
};

function status(online: boolean, models: StatusMessage['models'] = []): StatusMessage {
  return { v: 1, type: 'status', id: crypto.randomUUID(), ts: 0, online, agentVersion: '9.9.9', models };
}

describe('DeviceRegistry', () => {
  let store: TempStore;
  let clock: ReturnType<typeof manualClock>;
  let registry: DeviceRegistry;

  beforeEach(async () => {
    store = await openTempStore();
    clock = manualClock();
    registry = new DeviceRegistry(
      store.db.collection<DeviceRecord>('devices'),
      store.db.collection<EnrollmentTokenRecord>('enrollment-tokens'),
      await loadProfiles(REPO_PROFILES),
      clock,
    );
  });
  afterEach(() => store.close());

  const newToken = (options: { profile?: string; expiresInSeconds?: number } = {}) =>
    registry.createEnrollmentToken({ tags: { site: 'x' }, expiresInSeconds: 3600, ...options });

  it('a token enrolls exactly one device even when it is presented concurrently', async () => {
    const { token } = await newToken();
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => registry.enroll({ token, facts: {} }, context)),
    );
    const enrolled = results.filter((r) => r.status === 'fulfilled');
    const refused = results.flatMap((r) =>
      r.status === 'rejected' ? [(r.reason as EdgefleetError).code] : [],
    );
    expect(enrolled).toHaveLength(1);
    expect(refused).toEqual(Array(4).fill('enrollment_token_used'));
    expect(await registry.list()).toHaveLength(1);
  });

  it('stores neither tokens nor device passwords in the clear', async () => {
    const { token } = await newToken();
    const enrolled = await registry.enroll({ token, facts: { hostname: 'h1' } }, context);
    const everything = JSON.stringify(await store.db.level.iterator().all());
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(enrolled.mqtt.password);
    const record = await registry.get(enrolled.deviceId);
    expect(record.secret.salt).not.toBe('');
    expect(viewOf(record)).not.toHaveProperty('secret');
    expect(enrolled.deviceId).toMatch(/^dev-[a-z0-9]+$/);
    expect(enrolled.mqtt).toMatchObject({ url: context.mqttUrl, username: enrolled.deviceId });
    expect(enrolled.trustedKeys).toEqual(context.trustedKeys);
    expect(record.facts).toEqual({ hostname: 'h1' });
  });

  it('expires a token at its expiry instant, not a millisecond later', async () => {
    const early = await newToken({ expiresInSeconds: 60 });
    const late = await newToken({ expiresInSeconds: 60 });
    clock.advance(59_999);
    await expect(registry.enroll({ token: early.token, facts: {} }, context)).resolves.toBeDefined();
    clock.advance(1);
    expect(await codeOf(registry.enroll({ token: late.token, facts: {} }, context))).toBe(
      'enrollment_token_expired',
    );
  });

  it('picks the requested profile over the token profile over the default; an unknown one wastes no token', async () => {
    const plain = await newToken();
    expect((await registry.enroll({ token: plain.token, facts: {} }, context)).profile.id).toBe('x86_64-cpu');
    const pi = await newToken({ profile: 'raspberry-pi-5' });
    expect(await codeOf(registry.enroll({ token: pi.token, profile: 'toaster', facts: {} }, context))).toBe(
      'unknown_profile',
    );
    const overridden = await registry.enroll({ token: pi.token, profile: 'jetson-orin', facts: {} }, context);
    expect(overridden.profile.id).toBe('jetson-orin');
    expect(await codeOf(newToken({ profile: 'toaster' }))).toBe('unknown_profile');
    expect(await codeOf(registry.enroll({ token: 'eft_never-issued', facts: {} }, context))).toBe(
      'enrollment_token_invalid',
    );
  });

  it('verifies device secrets, and a cached success never lets a wrong secret through', async () => {
    const { token } = await newToken();
    const device = await registry.enroll({ token, facts: {} }, context);
    const other = await registry.enroll({ token: (await newToken()).token, facts: {} }, context);
    expect(await registry.verifyDevice(device.deviceId, device.mqtt.password)).toBe(true);
    expect(await registry.verifyDevice(device.deviceId, device.mqtt.password)).toBe(true);
    expect(await registry.verifyDevice(device.deviceId, `${device.mqtt.password}x`)).toBe(false);
    expect(await registry.verifyDevice(device.deviceId, other.mqtt.password)).toBe(false);
    expect(await registry.verifyDevice(other.deviceId, device.mqtt.password)).toBe(false);
    expect(await registry.verifyDevice('dev-unknown', device.mqtt.password)).toBe(false);
  });

  it('moves a device never_seen → online → offline (last will keeps its models) → online again', async () => {
    const { deviceId } = await registry.enroll({ token: (await newToken()).token, facts: {} }, context);
    expect(viewOf(await registry.get(deviceId))).toMatchObject({ status: 'never_seen', lastSeen: null });

    const models = [{ name: 'clf', version: 2, executionProvider: 'cpu' }];
    clock.advance(1000);
    expect(await registry.applyStatus(deviceId, status(true, models))).toEqual({ cameOnline: true });
    expect(viewOf(await registry.get(deviceId))).toMatchObject({
      status: 'online',
      lastSeen: clock.now().toISOString(),
      agentVersion: '9.9.9',
      models,
    });
    expect(await registry.applyStatus(deviceId, status(true, models))).toEqual({ cameOnline: false });

    expect(await registry.applyStatus(deviceId, status(false))).toEqual({ cameOnline: false });
    expect(viewOf(await registry.get(deviceId))).toMatchObject({ status: 'offline', models });
    expect(await registry.applyStatus(deviceId, status(true))).toEqual({ cameOnline: true });
    expect(await registry.applyStatus('dev-unknown', status(true))).toBeUndefined();
  });

  it('keeps concurrent status, telemetry and touches of one device without losing any of them', async () => {
    const { deviceId } = await registry.enroll({ token: (await newToken()).token, facts: {} }, context);
    const report = telemetry();
    await Promise.all([
      registry.applyStatus(deviceId, status(true, [{ name: 'm', version: 1, executionProvider: 'cpu' }])),
      registry.applyTelemetry(deviceId, report),
      registry.touch(deviceId),
    ]);
    const device = viewOf(await registry.get(deviceId));
    expect(device.status).toBe('online');
    expect(device.telemetry).toEqual(report);
    expect(device.models).toHaveLength(1);
  });

  it('filters by tags and by the status a device shows (never_seen is neither online nor offline)', async () => {
    const a = await registry.enroll({ token: (await newToken()).token, facts: {} }, context);
    const b = await registry.enroll({ token: (await newToken()).token, facts: {} }, context);
    const c = await registry.enroll({ token: (await newToken()).token, facts: {} }, context);
    await registry.applyStatus(a.deviceId, status(true));
    await registry.applyStatus(b.deviceId, status(true));
    await registry.applyStatus(b.deviceId, status(false));
    const ids = async (filter: Parameters<DeviceRegistry['list']>[0]) =>
      (await registry.list(filter)).map((d) => d.id);
    expect(await ids({ status: 'online' })).toEqual([a.deviceId]);
    expect(await ids({ status: 'offline' })).toEqual([b.deviceId]);
    expect((await ids({})).sort()).toEqual([a.deviceId, b.deviceId, c.deviceId].sort());
    expect(await ids({ tags: { site: 'y' } })).toEqual([]);
    expect((await ids({ tags: { site: 'x' } })).length).toBe(3);
  });
});
