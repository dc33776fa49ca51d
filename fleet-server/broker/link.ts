/**
 * The fleet server's own MQTT connection: it hears every device channel and sends commands. It connects
 * over TCP like any client, so an external broker can replace the embedded one.
 * Every incoming payload is parsed once; a message whose type does not belong on its channel, or whose
 * topic is malformed, is rejected, counted by reason and logged — never thrown into the broker.
 */
import { gunzip } from 'node:zlib';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  assertNever,
  type Command,
  type DriftMessage,
  encodeMessage,
  type Message,
  parseMessage,
  type SamplesMessage,
  type StatusMessage,
  type TelemetryMessage,
  type UpdateMessage,
} from '../../shared/protocol/messages.js';
import { type Channel, DEVICE_CHANNELS, parseTopic, topics } from '../../shared/protocol/topics.js';

/** The one channel each message type may arrive on. */
const CHANNEL_OF: Record<Message['type'], Channel> = {
  install: 'commands',
  activate: 'commands',
  rollback: 'commands',
  status: 'status',
  telemetry: 'telemetry',
  drift: 'telemetry',
  update: 'updates',
  samples: 'samples',
};

export interface DeviceMessageHandlers {
  status(deviceId: string, message: StatusMessage): Promise<void>;
  telemetry(deviceId: string, message: TelemetryMessage): Promise<void>;
  drift(deviceId: string, message: DriftMessage): Promise<void>;
  update(deviceId: string, message: UpdateMessage): Promise<void>;
  samples(deviceId: string, message: SamplesMessage): Promise<void>;
}

export interface FleetLink {
  /** Start hearing devices. Called once, when everything the handlers use exists: nothing is subscribed
   *  before, so no device message can arrive ahead of its handler. */
  listen(handlers: DeviceMessageHandlers): Promise<void>;
  sendCommand(deviceId: string, command: Command): Promise<void>;
  /** Rejected messages by reason. */
  readonly rejected: Map<string, number>;
  close(): Promise<void>;
}

export async function connectFleetLink(options: {
  url: string;
  username: string;
  password: string;
  maxMessageBytes: number;
  /** Largest sample batch after decompression, bytes. */
  maxSampleBatchBytes: number;
  /** Told of every refused message that came from a known device topic (per-device accounting). */
  onRejected?: (deviceId: string, channel: string, reason: string) => void;
  log: Logger;
}): Promise<FleetLink> {
  const { log } = options;
  let handlers: DeviceMessageHandlers | undefined;
  const rejected = new Map<string, number>();
  const reject = (reason: string, topic: string, detail?: string) => {
    rejected.set(reason, (rejected.get(reason) ?? 0) + 1);
    log.warn({ topic, reason, detail }, 'device message rejected');
    const where = parseTopic(topic);
    if (where) options.onRejected?.(where.deviceId, where.channel, reason);
  };

  const client: MqttClient = await mqtt.connectAsync(options.url, {
    clientId: `edgefleet-server-${process.pid}-${Date.now().toString(36)}`,
    username: options.username,
    password: options.password,
    clean: true,
    reconnectPeriod: 1000,
  });
  client.on('error', (err) => log.error({ err: err.message }, 'fleet mqtt link error'));

  client.on('message', (topic, payload) => {
    if (!handlers) return;
    const where = parseTopic(topic);
    if (!where) return reject('bad_topic', topic);
    if (where.channel !== 'samples') return dispatch(topic, where, payload);
    // Sample batches travel gzip-compressed; cap what they may inflate to (a small payload can be a bomb).
    // Inflated on libuv's thread pool, off the event loop: ingestion's heaviest step runs beside the rest.
    track(
      new Promise<void>((done) => {
        gunzip(payload, { maxOutputLength: options.maxSampleBatchBytes }, (err, body) => {
          if (err) {
            reject(err.name === 'RangeError' ? 'oversize_batch' : 'invalid_message', topic, err.message);
            return done();
          }
          dispatch(topic, where, body);
          done();
        });
      }),
    );
  });

  /** Messages still being handled: close() waits for them, so none is cut off by the store closing. */
  const inflight = new Set<Promise<void>>();
  function track(work: Promise<void>): void {
    inflight.add(work);
    void work.finally(() => inflight.delete(work));
  }

  function dispatch(topic: string, where: NonNullable<ReturnType<typeof parseTopic>>, body: Buffer): void {
    if (!handlers) return;
    const parsed = parseMessage(
      body,
      where.channel === 'samples' ? options.maxSampleBatchBytes : options.maxMessageBytes,
    );
    if (!parsed.ok) {
      reject('invalid_message', topic, parsed.reason);
      return;
    }
    const message = parsed.message;
    if (CHANNEL_OF[message.type] !== where.channel) {
      reject('wrong_channel', topic, `${message.type} on ${where.channel}`);
      return;
    }
    let handled: Promise<void>;
    switch (message.type) {
      case 'status':
        handled = handlers.status(where.deviceId, message);
        break;
      case 'telemetry':
        handled = handlers.telemetry(where.deviceId, message);
        break;
      case 'drift':
        handled = handlers.drift(where.deviceId, message);
        break;
      case 'update':
        handled = handlers.update(where.deviceId, message);
        break;
      case 'samples':
        handled = handlers.samples(where.deviceId, message);
        break;
      case 'install':
      case 'activate':
      case 'rollback':
        reject('wrong_channel', topic, 'devices do not send commands');
        return;
      default:
        assertNever(message, 'message type');
        return;
    }
    track(
      handled.catch((err) => {
        rejected.set('handler_error', (rejected.get('handler_error') ?? 0) + 1);
        log.error({ err, topic }, 'device message handler failed');
      }),
    );
  }

  return {
    rejected,
    async listen(h) {
      handlers = h;
      await client.subscribeAsync(
        DEVICE_CHANNELS.map((channel) => topics.allDevices(channel)),
        { qos: 1 },
      );
    },
    async sendCommand(deviceId, command) {
      await client.publishAsync(topics.commands(deviceId), encodeMessage(command), { qos: 1 });
    },
    async close() {
      // Without a broker (it closes first at shutdown) there is nothing to wait for: end at once.
      await client.endAsync(!client.connected);
      // Handlers of messages already received finish before the caller closes the store under them.
      while (inflight.size > 0) await Promise.all([...inflight]);
    },
  };
}
