import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../../../fleet-server/devices/profiles.js';
import {
  type DeviceRecord,
  DeviceRegistry,
  type EnrollmentTokenRecord,
} from '../../../../fleet-server/devices/registry.js';
import {
  type ModelRegistry,
  type ModelVersionRecord,
  versionKey,
} from '../../../../fleet-server/registry/models.js';
import { type CommandSender, RolloutController } from '../../../../fleet-server/rollouts/controller.js';
import type { RolloutRecord } from '../../../../fleet-server/rollouts/record.js';
import { presetSpec } from '../../../../fleet-server/rollouts/spec.js';
import type { Collection } from '../../../../fleet-server/store/db.js';
import type { Command, InstallCommand, UpdateMessage } from '../../../../shared/protocol/messages.js';
import { REPO_PROFILES } from '../../../support/fleet.js';
import { mlp } from '../../../support/models.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';
import { openModelRegistry } from '../wiring.js';

interface Sent {
  deviceId: string;
  command: Command;
  /** The device's state in the stored rollout when the command went out. */
  storedState: string | undefined;
}

describe('RolloutController', () => {
  let store: TempStore;
  let devices: DeviceRegistry;
  let models: ModelRegistry;
  let stored: Collection<RolloutRecord>;
  let controller: RolloutController;
  const clock = manualClock();
  const sent: Sent[] = [];
  let failSends = false;
  const ids: string[] = [];

  const sender: CommandSender = {
    async sendCommand(deviceId, command) {
      if (failSends) throw new Error('broker unreachable');
      const rollout = await stored.get(command.rolloutId);
      sent.push({
        deviceId,
        command,
        storedState: rollout?.devices.find((d) => d.deviceId === deviceId)?.state,
      });
    },
  };

  beforeAll(async () => {
    store = await openTempStore('fleet-rollouts-');
    devices = new DeviceRegistry(
      store.db.collection<DeviceRecord>('devices'),
      store.db.collection<EnrollmentTokenRecord>('enrollment-tokens'),
      await loadProfiles(REPO_PROFILES),
      clock,
    );
    ({ models: models } = await openModelRegistry(store, clock.now, 1 << 24));
    await models.push('clf', mlp(1), { actor: 'test' });
    stored = store.db.collection<RolloutRecord>('rollouts');
    controller = new RolloutController(stored, devices, models, sender, {
      publicUrl: 'http://fleet.test',
      now: clock.now,
      log: pino({ level: 'silent' }),
      onSucceeded: async (rollout) => void succeeded.push(rollout.id),
    });
    for (let i = 0; i < 3; i++) {
      const { token } = await devices.createEnrollmentToken({
        tags: { ring: i < 2 ? 'early' : 'late' },
        expiresInSeconds: 3600,
      });
      ids.push((await devices.enroll({ token, facts: {} }, enrollContext)).deviceId);
    }
  });
  afterAll(() => store?.close());
  const succeeded: string[] = [];
  beforeEach(() => {
    succeeded.length = 0;
    sent.length = 0;
    failSends = false;
  });

  const enrollContext = { trustedKeys: [], serverUrl: 'http://fleet.test', mqttUrl: 'mqtt://fleet.test' };
  // Each rollout gets its own model: one model may have only one live rollout at a time.
  let models_ = 0;
  const create = async (targets: RolloutRecord['targets'], name = `clf-${++models_}`) => {
    if (!(await models.latest(name))) await models.push(name, mlp(1), { actor: 'test' });
    return controller.create({
      model: { name, version: 1 },
      targets,
      spec: presetSpec('all-at-once'),
      actor: 'op',
    });
  };
  const install = (s: Sent) => s.command as InstallCommand;
  const update = (rollout: RolloutRecord, deviceId: string, state: UpdateMessage['state']) => {
    const device = rollout.devices.find((d) => d.deviceId === deviceId)!;
    return controller.onUpdate(deviceId, {
      v: 1,
      type: 'update',
      id: crypto.randomUUID(),
      ts: 0,
      commandId: device.commandId!,
      rolloutId: rollout.id,
      model: rollout.model,
      state,
      reason: null,
      executionProvider: state === 'active' ? 'cpu' : null,
      serving: null,
    });
  };

  it('persists every target as pending before the first command goes out, one command per device', async () => {
    const rollout = await create({ devices: [ids[2]!], tags: { ring: 'early' } });
    expect(rollout.devices.map((d) => d.deviceId)).toEqual([...ids].sort());
    expect(sent.map((s) => s.storedState)).toEqual(['pending', 'pending', 'pending']);
    expect(new Set(sent.map((s) => s.command.id)).size).toBe(3);
    const version = await models.get(rollout.model.name, 1);
    for (const { deviceId, command } of sent as { deviceId: string; command: InstallCommand }[]) {
      expect(command.mode).toBe('activate');
      expect(command.id).toBe(rollout.devices.find((d) => d.deviceId === deviceId)!.commandId);
      expect(command.rolloutId).toBe(rollout.id);
      expect(JSON.parse(command.manifest)).toEqual(version.manifest);
      expect(command.artifactUrl).toBe(`http://fleet.test/api/v1/artifacts/${version.artifact.sha256}`);
    }
  });

  it('calls onSucceeded once, when the last device activates, and never for a rollout with a failure', async () => {
    const ok = await create({ tags: { ring: 'early' } });
    const [a, b] = ok.devices.map((d) => d.deviceId) as [string, string];
    await update(ok, a, 'active');
    expect(succeeded).toEqual([]);
    await Promise.all([update(ok, b, 'active'), update(ok, b, 'active')]);
    expect(succeeded).toEqual([ok.id]);

    const bad = await create({ tags: { ring: 'early' } });
    await update(bad, a, 'active');
    await update(bad, b, 'failed');
    expect(succeeded).toEqual([ok.id]);
  });

  it('records reports, ignores unknown rollouts, and loses none when devices report at once', async () => {
    const rollout = await create({ tags: { ring: 'early' } });
    const [a, b] = rollout.devices.map((d) => d.deviceId) as [string, string];
    await Promise.all([update(rollout, a, 'downloading'), update(rollout, b, 'downloading')]);
    await Promise.all([update(rollout, a, 'active'), update(rollout, b, 'failed')]);
    const after = await controller.get(rollout.id);
    expect(after.devices.map((d) => d.state)).toEqual(['active', 'failed']);
    expect(after.devices[0]!.executionProvider).toBe('cpu');
    await expect(update({ ...rollout, id: 'ro-never-created' }, a, 'active')).resolves.toBeUndefined();
  });

  it('re-sends an unfinished install with its original command id when the device comes back', async () => {
    const rollout = await create({ tags: { ring: 'early' } });
    const [a, b] = rollout.devices as [RolloutRecord['devices'][0], RolloutRecord['devices'][0]];
    await update(rollout, a.deviceId, 'verifying');
    await update(rollout, b.deviceId, 'active');
    sent.length = 0;
    await controller.onDeviceOnline(a.deviceId);
    await controller.onDeviceOnline(b.deviceId);
    const forThisRollout = sent.filter((s) => s.command.rolloutId === rollout.id);
    expect(forThisRollout.map((s) => [s.deviceId, s.command.id])).toEqual([[a.deviceId, a.commandId]]);
  });

  it('sends the manifest the registry holds at send time', async () => {
    const rollout = await create({ devices: [ids[2]!] });
    const key = versionKey(rollout.model.name, 1);
    const versions = store.db.collection<ModelVersionRecord>('model-versions');
    const original = (await versions.get(key))!;
    try {
      await versions.put(key, { ...original, manifest: { ...original.manifest, labels: { edited: 'yes' } } });
      sent.length = 0;
      await controller.onDeviceOnline(ids[2]!);
      const resent = sent.find((s) => s.command.rolloutId === rollout.id)!;
      expect(JSON.parse(install(resent).manifest).labels).toEqual({ edited: 'yes' });
    } finally {
      await versions.put(key, original);
    }
  });

  it('keeps a rollout whose commands could not be sent, and sends them on reconnect', async () => {
    failSends = true;
    const rollout = await create({ devices: [ids[0]!] });
    expect((await controller.get(rollout.id)).devices[0]!.state).toBe('pending');
    failSends = false;
    await controller.onDeviceOnline(ids[0]!);
    expect(sent.filter((s) => s.command.rolloutId === rollout.id)).toHaveLength(1);
  });

  it('lists rollouts newest first, also when two are created within one clock tick', async () => {
    const first = await create({ devices: [ids[0]!] });
    const second = await create({ devices: [ids[1]!] });
    const listed = (await controller.list()).map((r) => r.id);
    expect(listed.indexOf(second.id)).toBeLessThan(listed.indexOf(first.id));
    clock.advance(1000);
    const third = await create({ devices: [ids[2]!] });
    expect((await controller.list())[0]!.id).toBe(third.id);
  });

  it('refuses unknown versions, unknown devices and empty selections without storing anything', async () => {
    const before = (await controller.list()).length;
    await expect(
      controller.create({
        model: { name: 'clf', version: 9 },
        targets: { devices: [ids[0]!] },
        spec: presetSpec('all-at-once'),
        actor: 'op',
      }),
    ).rejects.toMatchObject({ code: 'not_found' });
    await expect(create({ devices: [ids[0]!, 'dev-ghost'] })).rejects.toMatchObject({
      code: 'unknown_device',
      message: expect.stringContaining('dev-ghost'),
    });
    await expect(create({ tags: { ring: 'none' } })).rejects.toMatchObject({ code: 'no_targets' });
    expect((await controller.list()).length).toBe(before);
    expect(sent).toEqual([]);
  });

  it('allows one live rollout per model: a second is refused until the first has finished', async () => {
    const first = await create({ devices: [ids[0]!] }, 'solo');
    await expect(create({ devices: [ids[1]!] }, 'solo')).rejects.toMatchObject({
      code: 'rollout_in_progress',
      message: expect.stringContaining(first.id),
    });
    await update(first, ids[0]!, 'active');
    expect((await controller.get(first.id)).status.phase).toBe('succeeded');
    await expect(create({ devices: [ids[1]!] }, 'solo')).resolves.toMatchObject({ model: { name: 'solo' } });
  });

  it('operator actions: abort sends rollbacks to devices that got the version; a wrong phase is a 409', async () => {
    const rollout = await create({ tags: { ring: 'early' } });
    const [a, b] = rollout.devices.map((d) => d.deviceId) as [string, string];
    await update(rollout, a, 'active');
    sent.length = 0;
    const aborted = await controller.act(rollout.id, { type: 'abort', reason: 'bad build' }, 'alice');
    expect(aborted.status).toMatchObject({
      phase: 'aborted',
      abort: { by: 'alice', reason: { message: 'bad build' } },
    });
    expect(sent.map((s) => [s.deviceId, s.command.type])).toEqual([
      [a, 'rollback'],
      [b, 'rollback'],
    ]);
    expect(sent[0]!.command).toMatchObject({ model: rollout.model, reason: { code: 'operator_abort' } });
    await expect(controller.act(rollout.id, { type: 'resume' }, 'alice')).rejects.toMatchObject({
      code: 'invalid_phase',
    });
    await expect(controller.act('ro-nope', { type: 'pause' }, 'alice')).rejects.toMatchObject({
      code: 'not_found',
    });
  });

  it('after a restart resumes unfinished rollouts without re-sending to finished devices', async () => {
    const rollout = await create({ tags: { ring: 'early' } });
    const [a, b] = rollout.devices.map((d) => d.deviceId) as [string, string];
    await update(rollout, a, 'active');
    controller.close();
    const restarted = new RolloutController(stored, devices, models, sender, {
      publicUrl: 'http://fleet.test',
      now: clock.now,
      log: pino({ level: 'silent' }),
    });
    sent.length = 0;
    await restarted.start();
    expect(sent.filter((s) => s.command.rolloutId === rollout.id)).toEqual([]);
    clock.advance(31_000); // past the re-send interval: the silent device gets the same command again
    await restarted.start();
    const resent = sent.filter((s) => s.command.rolloutId === rollout.id);
    expect(resent.map((s) => [s.deviceId, s.command.id])).toEqual([[b, rollout.devices[1]!.commandId]]);
    restarted.close();
  });

  it('a device that joins the targets later gets the production version when it comes online', async () => {
    const rollout = await create({ tags: { ring: 'late' } }, 'joiner');
    await update(rollout, ids[2]!, 'active');
    await models.setAlias('joiner', 'production', 1, 'test');
    const { token } = await devices.createEnrollmentToken({ tags: { ring: 'late' }, expiresInSeconds: 3600 });
    const late = (await devices.enroll({ token, facts: {} }, enrollContext)).deviceId;
    sent.length = 0;
    await controller.onDeviceOnline(late);
    // Coming online again joins nothing twice: it is sent the same install again (devices are idempotent by
    // command id), as any device that still owes a live rollout an answer.
    await controller.onDeviceOnline(late);
    expect(sent.map((s) => [s.deviceId, s.command.type, s.command.rolloutId])).toEqual([
      [late, 'install', rollout.id],
      [late, 'install', rollout.id],
    ]);
    expect(sent[1]!.command.id).toBe(sent[0]!.command.id);
    const joined = await controller.get(rollout.id);
    expect(joined.devices.find((d) => d.deviceId === late)).toMatchObject({
      state: 'pending',
      mode: 'activate',
    });
    expect(joined.status.events.at(-1)).toMatchObject({ type: 'joined' });
    // Devices of other tags are left alone.
    sent.length = 0;
    await controller.onDeviceOnline(ids[0]!);
    expect(sent.filter((s) => s.command.rolloutId === rollout.id)).toEqual([]);
  });

  it.each([
    ['fail', 'failed'],
    ['skip', 'skipped'],
  ] as const)(
    'a late joiner whose install is lost is re-sent, and one that never answers is %sed after the device timeout',
    async (onDeviceTimeout, final) => {
      const name = `late-${onDeviceTimeout}`;
      await models.push(name, mlp(1), { actor: 'test' });
      const enrollTagged = async () => {
        const { token } = await devices.createEnrollmentToken({
          tags: { ring: name },
          expiresInSeconds: 3600,
        });
        return (await devices.enroll({ token, facts: {} }, enrollContext)).deviceId;
      };
      const early = await enrollTagged();
      const rollout = await controller.create({
        model: { name, version: 1 },
        targets: { tags: { ring: name } },
        spec: presetSpec('all-at-once', { deviceTimeoutS: 120, onDeviceTimeout }),
        actor: 'op',
      });
      await update(rollout, early, 'active');
      expect((await controller.get(rollout.id)).status.phase).toBe('succeeded');
      await models.setAlias(name, 'production', 1, 'test');
      const late = await enrollTagged();
      const mine = () => sent.filter((s) => s.command.rolloutId === rollout.id && s.deviceId === late);

      await controller.onDeviceOnline(late); // the install it is sent is lost: the device never answers
      expect(mine().map((s) => s.command.type)).toEqual(['install']);
      const commandId = mine()[0]!.command.id;

      // Past the re-send interval (and across a restart: start() picks the rollout up again) it is re-sent.
      clock.advance(31_000);
      await controller.start();
      expect(mine().map((s) => s.command.id)).toEqual([commandId, commandId]);

      // Still silent 120 s after the install was first issued: timed out per the rollout's policy.
      clock.advance(90_000);
      await controller.start();
      const after = await controller.get(rollout.id);
      expect(after.devices.find((d) => d.deviceId === late)).toMatchObject({
        state: final,
        reason: { code: 'device_timeout' },
      });
      expect(after.status.phase).toBe('succeeded');
      // Finished: nothing more is sent to it.
      const before = mine().length;
      clock.advance(60_000);
      await controller.start();
      await controller.onDeviceOnline(late);
      expect(mine()).toHaveLength(before);
    },
  );
});
