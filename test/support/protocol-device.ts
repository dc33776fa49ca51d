/**
 * A device that speaks the real protocol over the fleet's real broker, without an agent: enrolled through the
 * API, connected with its own MQTT credentials (so the broker's ACLs apply), online by its retained status,
 * and answering each command as the test scripts it. It drives a rollout into a phase in milliseconds where
 * a real agent downloads, verifies and loads a model first. Like the agent, it answers a command id once.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { EnrollResponse } from '../../shared/api/enroll.js';
import {
  type Command,
  encodeMessage,
  type ModelRef,
  PROTOCOL_VERSION,
  parseMessage,
  type UpdateMessage,
  type UpdateState,
} from '../../shared/protocol/messages.js';
import { topics } from '../../shared/protocol/topics.js';
import type { Api } from './fleet.js';
import { waitFor } from './wait.js';

export interface Answers {
  /** The states reported for an install, in order; empty: the device never answers it. */
  install: readonly UpdateState[];
  /** Whether a rollback is answered with `rolled_back`; false: the device never answers it. */
  rollback: boolean;
}

const envelope = (): { v: typeof PROTOCOL_VERSION; id: string; ts: number } => ({
  v: PROTOCOL_VERSION,
  id: crypto.randomUUID(),
  ts: Date.now(),
});

export class ProtocolDevice {
  /** Every command received, re-sends included, in order. */
  readonly commands: Command[] = [];
  private readonly answered = new Set<string>();

  private constructor(
    readonly deviceId: string,
    private readonly client: MqttClient,
    /** How it answers from now on; a test may change it between commands. */
    public answers: Answers,
  ) {}

  /** Enroll with a fresh token, connect, subscribe to commands and come online (waits until the fleet says so). */
  static async enroll(
    api: Api,
    answers: Answers,
    tags: Record<string, string> = {},
  ): Promise<ProtocolDevice> {
    const { token } = await api.enrollmentToken({ tags });
    const enrolled: EnrollResponse = await api.request('POST', '/api/v1/enroll', { token });
    const client = await mqtt.connectAsync(enrolled.mqtt.url, {
      clientId: enrolled.deviceId,
      username: enrolled.mqtt.username,
      password: enrolled.mqtt.password,
      reconnectPeriod: 0,
      will: {
        topic: topics.status(enrolled.deviceId),
        payload: encodeMessage({ ...envelope(), type: 'status', online: false, models: [] }),
        qos: 1,
        retain: true,
      },
    });
    const device = new ProtocolDevice(enrolled.deviceId, client, answers);
    client.on('message', (_topic, payload) => device.receive(payload));
    await client.subscribeAsync(topics.commands(enrolled.deviceId), { qos: 1 });
    await client.publishAsync(
      topics.status(enrolled.deviceId),
      encodeMessage({ ...envelope(), type: 'status', online: true, models: [] }),
      { qos: 1, retain: true },
    );
    await waitFor(
      async () => (await api.device(enrolled.deviceId)).status === 'online',
      `device ${enrolled.deviceId} online at the fleet`,
    );
    return device;
  }

  /** The first command of `type` for `rolloutId` (waits for it). */
  command<T extends Command['type']>(type: T, rolloutId: string): Promise<Extract<Command, { type: T }>> {
    return waitFor(
      () =>
        this.commands.find(
          (c): c is Extract<Command, { type: T }> => c.type === type && c.rolloutId === rolloutId,
        ),
      `a ${type} command for rollout ${rolloutId} at device ${this.deviceId}`,
    );
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }

  private receive(payload: Buffer): void {
    const parsed = parseMessage(payload);
    if (!parsed.ok) throw new Error(`device ${this.deviceId} got a bad command: ${parsed.reason}`);
    const command = parsed.message as Command;
    this.commands.push(command);
    if (this.answered.has(command.id)) return;
    this.answered.add(command.id);
    if (command.type === 'install') {
      const { name, version } = JSON.parse(command.manifest) as ModelRef;
      void this.report(command.id, command.rolloutId, { name, version }, this.answers.install);
    } else if (command.type === 'rollback' && this.answers.rollback) {
      void this.report(command.id, command.rolloutId, command.model, ['rolled_back']);
    }
  }

  private async report(
    commandId: string,
    rolloutId: string,
    model: ModelRef,
    states: readonly UpdateState[],
  ): Promise<void> {
    for (const state of states) {
      const update: UpdateMessage = {
        ...envelope(),
        type: 'update',
        commandId,
        rolloutId,
        model,
        state,
        reason: state === 'failed' ? { code: 'self_test_failed', message: 'scripted failure' } : null,
        executionProvider: state === 'active' ? 'cpu' : null,
        serving: null,
      };
      await this.client.publishAsync(topics.updates(this.deviceId), encodeMessage(update), { qos: 1 });
    }
  }
}
