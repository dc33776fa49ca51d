/**
 * Runs rollouts: resolves targets, persists the rollout with every device pending BEFORE any install command
 * goes out, moves device states on update reports (serialized per rollout), and re-sends an unfinished
 * install to a device that comes back online (same command id: devices are idempotent by id).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { type InstallCommand, PROTOCOL_VERSION, type UpdateMessage } from '../../shared/protocol/messages.js';
import type { DeviceRegistry } from '../devices/registry.js';
import type { ModelRegistry } from '../registry/models.js';
import type { Collection } from '../store/db.js';
import { KeyedMutex } from '../store/lock.js';
import {
  applyUpdate,
  phaseOf,
  type RolloutDevice,
  type RolloutRecord,
  type RolloutTargets,
  unfinishedFor,
} from './state.js';

export interface CommandSender {
  sendCommand(deviceId: string, command: InstallCommand): Promise<void>;
}

export class RolloutController {
  private readonly lock = new KeyedMutex();
  private lastIdMs = 0;

  constructor(
    private readonly rollouts: Collection<RolloutRecord>,
    private readonly devices: DeviceRegistry,
    private readonly models: ModelRegistry,
    private readonly sender: CommandSender,
    private readonly options: {
      publicUrl: string;
      now: () => Date;
      log: Logger;
      /** Called once when every targeted device has activated the version (e.g. to move `production`). */
      onSucceeded?: (rollout: RolloutRecord) => Promise<void>;
    },
  ) {}

  async create(request: {
    model: { name: string; version: number };
    targets: RolloutTargets;
    strategy: 'all-at-once';
    actor: string;
  }): Promise<RolloutRecord> {
    const { model, targets } = request;
    await this.models.get(model.name, model.version); // 404 for an unknown version
    const deviceIds = await this.resolveTargets(targets);
    const now = this.options.now();
    // Ids sort by creation order (listing newest first needs no index), so their time part never repeats
    // within a process, even for two rollouts created in one clock tick.
    const idMs = Math.max(now.getTime(), this.lastIdMs + 1);
    this.lastIdMs = idMs;
    const id = `ro-${idMs.toString(36).padStart(9, '0')}-${randomUUID().slice(0, 8)}`;
    const rollout: RolloutRecord = {
      id,
      model: { name: model.name, version: model.version },
      targets,
      strategy: request.strategy,
      createdAt: now.toISOString(),
      createdBy: request.actor,
      devices: deviceIds.map((deviceId) => ({
        deviceId,
        commandId: randomUUID(),
        state: 'pending',
        reason: null,
        executionProvider: null,
        updatedAt: now.toISOString(),
      })),
    };
    await this.rollouts.put(id, rollout);
    await Promise.all(rollout.devices.map((d) => this.sendInstall(rollout, d)));
    return rollout;
  }

  async get(id: string): Promise<RolloutRecord> {
    const rollout = await this.rollouts.get(id);
    if (!rollout) throw new NotFoundError('rollout', id);
    return rollout;
  }

  async list(): Promise<RolloutRecord[]> {
    return (await this.rollouts.values()).reverse();
  }

  onUpdate(deviceId: string, report: UpdateMessage): Promise<void> {
    return this.lock.run(report.rolloutId, async () => {
      const rollout = await this.rollouts.get(report.rolloutId);
      if (!rollout) {
        this.options.log.warn(
          { deviceId, rolloutId: report.rolloutId },
          'update report for an unknown rollout',
        );
        return;
      }
      const next = applyUpdate(rollout, deviceId, report, this.options.now());
      if (next === rollout) return;
      await this.rollouts.put(next.id, next);
      if (phaseOf(rollout) !== 'succeeded' && phaseOf(next) === 'succeeded') {
        await this.options
          .onSucceeded?.(next)
          .catch((err) => this.options.log.error({ err, rolloutId: next.id }, 'rollout success hook failed'));
      }
    });
  }

  /** A device came (back) online: send again whatever install it has not finished. */
  async onDeviceOnline(deviceId: string): Promise<void> {
    for (const rollout of await this.rollouts.values()) {
      const unfinished = unfinishedFor(rollout, deviceId);
      if (unfinished) await this.sendInstall(rollout, unfinished);
    }
  }

  private async resolveTargets(targets: RolloutTargets): Promise<string[]> {
    const ids = new Set<string>();
    for (const id of targets.devices ?? []) {
      if (!(await this.devices.find(id))) {
        throw new ValidationError(`unknown device '${id}' in rollout targets`, { code: 'unknown_device' });
      }
      ids.add(id);
    }
    if (targets.tags && Object.keys(targets.tags).length > 0) {
      for (const device of await this.devices.list({ tags: targets.tags })) ids.add(device.id);
    }
    if (ids.size === 0)
      throw new ValidationError('the rollout targets match no device', { code: 'no_targets' });
    return [...ids].sort();
  }

  private async sendInstall(rollout: RolloutRecord, device: RolloutDevice): Promise<void> {
    // Read the stored, signed manifest at send time: what the registry holds is what devices verify.
    const version = await this.models.get(rollout.model.name, rollout.model.version);
    const command: InstallCommand = {
      v: PROTOCOL_VERSION,
      type: 'install',
      id: device.commandId,
      ts: this.options.now().getTime(),
      rolloutId: rollout.id,
      manifest: JSON.stringify(version.manifest),
      artifactUrl: `${this.options.publicUrl}/api/v1/artifacts/${version.artifact.sha256}`,
      mode: 'activate',
      shadowPercent: 100,
    };
    try {
      await this.sender.sendCommand(device.deviceId, command);
    } catch (err) {
      // Not fatal: the command is re-sent when the device next comes online.
      this.options.log.warn(
        { err, deviceId: device.deviceId, rolloutId: rollout.id },
        'install command not sent',
      );
    }
  }
}
