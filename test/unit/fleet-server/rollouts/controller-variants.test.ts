import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../../../fleet-server/devices/profiles.js';
import {
  type DeviceRecord,
  DeviceRegistry,
  type EnrollmentTokenRecord,
} from '../../../../fleet-server/devices/registry.js';
import type { ModelRegistry } from '../../../../fleet-server/registry/models.js';
import { variantOf } from '../../../../fleet-server/registry/variants.js';
import { type CommandSender, RolloutController } from '../../../../fleet-server/rollouts/controller.js';
import type { RolloutRecord } from '../../../../fleet-server/rollouts/record.js';
import { presetSpec } from '../../../../fleet-server/rollouts/spec.js';
import type { Collection } from '../../../../fleet-server/store/db.js';
import type { InstallCommand } from '../../../../shared/protocol/messages.js';
import { REPO_PROFILES } from '../../../support/fleet.js';
import { mlp } from '../../../support/models.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';
import { openModelRegistry } from '../wiring.js';

describe('RolloutController: variants', () => {
  let store: TempStore;
  let devices: DeviceRegistry;
  let models: ModelRegistry;
  let stored: Collection<RolloutRecord>;
  let controller: RolloutController;
  const clock = manualClock();
  const sent: { deviceId: string; command: InstallCommand; storedRollout: boolean }[] = [];
  /** x86_64-cpu accepts default, fp32; x86_64-cuda accepts fp16, default, fp32. */
  const cpu: string[] = [];
  const gpu: string[] = [];

  const sender: CommandSender = {
    async sendCommand(deviceId, command) {
      if (command.type !== 'install') return;
      sent.push({ deviceId, command, storedRollout: (await stored.get(command.rolloutId)) !== undefined });
    },
  };
  const enrollContext = { trustedKeys: [], serverUrl: 'http://fleet.test', mqttUrl: 'mqtt://fleet.test' };
  const enroll = async (profile: string, ring: string) => {
    const { token } = await devices.createEnrollmentToken({
      tags: { ring },
      profile,
      expiresInSeconds: 3600,
    });
    return (await devices.enroll({ token, facts: {} }, enrollContext)).deviceId;
  };

  beforeAll(async () => {
    store = await openTempStore('fleet-rollout-variants-');
    const profiles = await loadProfiles(REPO_PROFILES);
    devices = new DeviceRegistry(
      store.db.collection<DeviceRecord>('devices'),
      store.db.collection<EnrollmentTokenRecord>('enrollment-tokens'),
      profiles,
      clock,
    );
    ({ models: models } = await openModelRegistry(store, clock.now, 1 << 24));
    stored = store.db.collection<RolloutRecord>('rollouts');
    controller = new RolloutController(stored, devices, models, sender, {
      publicUrl: 'http://fleet.test',
      now: clock.now,
      log: pino({ level: 'silent' }),
      profiles,
    });
    for (let i = 0; i < 2; i++) cpu.push(await enroll('x86_64-cpu', 'mixed'));
    for (let i = 0; i < 2; i++) gpu.push(await enroll('x86_64-cuda', 'mixed'));
  });
  afterAll(() => store?.close());
  beforeEach(() => {
    sent.length = 0;
  });

  /** A version of `name` with the given variants (the first creates it), each a different model. */
  const version = async (name: string, variants: string[]) => {
    let record = await models.push(name, mlp(1, 8), { actor: 'test', variant: variants[0] });
    for (const [i, variant] of variants.slice(1).entries()) {
      record = await models.addVariant(name, record.version, mlp(2 + i, 8), { actor: 'test', variant });
    }
    return record;
  };
  const rollout = (name: string, v: number, targets: RolloutRecord['targets']) =>
    controller.create({
      model: { name, version: v },
      targets,
      spec: presetSpec('all-at-once'),
      actor: 'op',
    });

  /** Every device of the rollout reports its install active. */
  const activate = async (r: RolloutRecord) => {
    for (const d of r.devices) {
      await controller.onUpdate(d.deviceId, {
        v: 1,
        type: 'update',
        id: crypto.randomUUID(),
        ts: 0,
        commandId: d.commandId!,
        rolloutId: r.id,
        model: r.model,
        state: 'active',
        reason: null,
        executionProvider: 'cpu',
        serving: null,
      });
    }
  };

  it('sends each device the manifest and artifact of the variant its profile prefers, recorded per device', async () => {
    const record = await version('mixed', ['default', 'fp16']);
    const created = await rollout('mixed', 1, { tags: { ring: 'mixed' } });

    const want = new Map([
      ...cpu.map((id) => [id, 'default'] as const),
      ...gpu.map((id) => [id, 'fp16'] as const),
    ]);
    expect(Object.fromEntries(created.devices.map((d) => [d.deviceId, d.variant]))).toEqual(
      Object.fromEntries(want),
    );
    expect(created.status.events[0]!.message).toBe(
      'all-at-once rollout to 4 device(s) (variants: default ×2, fp16 ×2)',
    );
    expect(sent.map((s) => s.deviceId).sort()).toEqual([...want.keys()].sort());
    for (const { deviceId, command } of sent) {
      const variant = variantOf(record, want.get(deviceId)!);
      expect(JSON.parse(command.manifest)).toEqual(variant.manifest);
      expect(command.artifactUrl).toBe(`http://fleet.test/api/v1/artifacts/${variant.artifact.sha256}`);
    }
    // The two variants really are different builds.
    expect(variantOf(record, 'fp16').artifact.sha256).not.toBe(variantOf(record, 'default').artifact.sha256);

    // A re-send (device back online) carries the same variant.
    sent.length = 0;
    await controller.onDeviceOnline(gpu[0]!);
    const resent = sent.filter((s) => s.command.rolloutId === created.id);
    expect(resent.map((s) => JSON.parse(s.command.manifest).variant)).toEqual(['fp16']);
  });

  it('follows the profile order, not the order the version got its variants in', async () => {
    await version('order', ['fp32', 'fp16', 'default']);
    const created = await rollout('order', 1, { devices: [cpu[0]!, gpu[0]!] });
    expect(Object.fromEntries(created.devices.map((d) => [d.deviceId, d.variant]))).toEqual({
      [cpu[0]!]: 'default',
      [gpu[0]!]: 'fp16',
    });
  });

  it('refuses a rollout that leaves a targeted device without a variant, naming them, storing and sending nothing', async () => {
    await version('halfonly', ['fp16']);
    const before = (await stored.values()).length;
    const err = await rollout('halfonly', 1, { tags: { ring: 'mixed' } }).catch((e) => e);
    expect(err).toMatchObject({ name: 'ConflictError', code: 'no_variant_for_devices' });
    const sortedCpu = [...cpu].sort();
    expect(err.message).toBe(
      `halfonly@1 has no variant for 2 targeted device(s): ${sortedCpu[0]} (x86_64-cpu), ${sortedCpu[1]} (x86_64-cpu). ` +
        'The version offers fp16; x86_64-cpu accepts default, fp32. ' +
        'Add a variant they accept to the version, or leave them out of the targets.',
    );
    for (const id of gpu) expect(err.message).not.toContain(id);
    expect((await stored.values()).length).toBe(before);
    expect(sent).toEqual([]);

    // The GPU devices alone can take it; adding a variant the CPUs accept makes the mixed rollout go.
    const gpuOnly = await rollout('halfonly', 1, { devices: gpu });
    expect(gpuOnly.devices.map((d) => d.variant)).toEqual(['fp16', 'fp16']);
    await activate(gpuOnly);
    expect((await controller.get(gpuOnly.id)).status.phase).toBe('succeeded');
    await models.addVariant('halfonly', 1, mlp(9, 8), { actor: 'test', variant: 'fp32' });
    const mixed = await rollout('halfonly', 1, { tags: { ring: 'mixed' } });
    expect(new Set(mixed.devices.filter((d) => cpu.includes(d.deviceId)).map((d) => d.variant))).toEqual(
      new Set(['fp32']),
    );
  });

  it('a late joiner gets its own variant, or joins as skipped with the reason when there is none', async () => {
    const record = await version('late', ['fp16']);
    await enroll('x86_64-cuda', 'late');
    const created = await rollout('late', 1, { tags: { ring: 'late' } });
    await activate(created);
    expect((await controller.get(created.id)).status.phase).toBe('succeeded');
    await models.setAlias('late', 'production', 1, 'test');

    const lateGpu = await enroll('x86_64-cuda', 'late');
    const lateCpu = await enroll('x86_64-cpu', 'late');
    sent.length = 0;
    await controller.onDeviceOnline(lateGpu);
    await controller.onDeviceOnline(lateCpu);
    await controller.onDeviceOnline(lateCpu); // recorded once, never retried
    expect(sent.map((s) => [s.deviceId, JSON.parse(s.command.manifest).variant])).toEqual([
      [lateGpu, 'fp16'],
    ]);
    expect(sent[0]!.command.artifactUrl).toContain(record.artifact.sha256);

    const after = await controller.get(created.id);
    expect(after.devices.find((d) => d.deviceId === lateGpu)).toMatchObject({
      state: 'pending',
      variant: 'fp16',
    });
    expect(after.devices.find((d) => d.deviceId === lateCpu)).toMatchObject({
      state: 'skipped',
      commandId: null,
      reason: { code: 'no_variant', message: 'late@1 offers fp16; profile x86_64-cpu accepts default, fp32' },
    });
    expect(after.devices.filter((d) => d.deviceId === lateCpu)).toHaveLength(1);
    expect(after.status.events.at(-1)!.message).toBe(
      `${lateCpu} joined the targets later but no variant fits it (late@1 offers fp16; profile x86_64-cpu accepts default, fp32): skipped`,
    );
    expect(after.status.phase).toBe('succeeded');
  });

  it("a rollout recorded before variants (no per-device variant) sends the version's first variant", async () => {
    const record = await version('old', ['default', 'fp16']);
    const created = await rollout('old', 1, { devices: [gpu[1]!] });
    expect(created.devices[0]!.variant).toBe('fp16');
    const { variant: _v, ...legacy } = created.devices[0]!;
    await stored.put(created.id, { ...created, devices: [legacy] });
    sent.length = 0;
    await controller.onDeviceOnline(gpu[1]!);
    const resent = sent.filter((s) => s.command.rolloutId === created.id);
    expect(resent).toHaveLength(1);
    expect(JSON.parse(resent[0]!.command.manifest)).toEqual(record.manifest);
    expect(JSON.parse(resent[0]!.command.manifest).variant).toBe('default');
  });
});
