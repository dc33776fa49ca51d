/**
 * The agent's MQTT link to the fleet: one persistent session (clientId = device id, clean: false), QoS 1
 * both ways, a retained online status on every connect (offline as the last will), reconnection with
 * exponential backoff and jitter. Reports published while disconnected wait in a bounded queue (oldest
 * dropped first, and counted) and are flushed on reconnect.
 * Incoming commands are parsed once; anything invalid is counted and logged, never thrown.
 * The link is created first and connects on `start()`: the agent starts it once its local API is up, so a
 * device serves inference before (and without) the fleet, and the MQTT client's code loads after the agent
 * is ready rather than before.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { EnrollResponse } from '../../shared/api/enroll.js';
import {
  type ActiveModel,
  assertNever,
  type Command,
  encodeMessage,
  type Message,
  PROTOCOL_VERSION,
  parseMessage,
  type StatusMessage,
} from '../../shared/protocol/messages.js';
import { topics } from '../../shared/protocol/topics.js';

export interface LinkCounters {
  invalidCommands: number;
  droppedReports: number;
  reconnects: number;
}

export interface Link {
  publish(message: Message): void;
  /** Publish the retained online status with the current models. */
  publishStatus(models: ActiveModel[]): void;
  onCommand(handler: (command: Command) => void): void;
  /** Load the MQTT client and connect; reports sent before then wait in the queue. Idempotent. */
  start(): Promise<void>;
  /** A compressed sample batch, QoS 1; resolves on PUBACK, rejects when offline (the outbox keeps it). */
  publishSamples(payload: Buffer): Promise<void>;
  readonly counters: LinkCounters;
  readonly connected: boolean;
  close(): Promise<void>;
}

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

export function connectLink(options: {
  identity: EnrollResponse;
  agentVersion: string;
  queueLimit: number;
  newId: () => string;
  log: Logger;
  getModels: () => ActiveModel[];
}): Link {
  const { identity, log } = options;
  const deviceId = identity.deviceId;
  const counters: LinkCounters = { invalidCommands: 0, droppedReports: 0, reconnects: 0 };
  const pending: { topic: string; payload: Buffer; retain: boolean }[] = [];
  const handlers: ((command: Command) => void)[] = [];

  const status = (online: boolean, models: ActiveModel[]): StatusMessage => ({
    v: PROTOCOL_VERSION,
    type: 'status',
    id: options.newId(),
    ts: Date.now(),
    online,
    agentVersion: options.agentVersion,
    models,
  });

  let client: MqttClient | undefined;
  let closed = false;
  let starting: Promise<void> | undefined;
  const start = async (): Promise<void> => {
    const { default: mqtt } = await import('mqtt');
    if (closed) return;
    const c = mqtt.connect(identity.mqtt.url, {
      clientId: deviceId,
      username: identity.mqtt.username,
      password: identity.mqtt.password,
      clean: false,
      keepalive: 30,
      reconnectPeriod: MIN_BACKOFF_MS,
      connectTimeout: 10_000,
      // mqtt-packet otherwise pre-builds a 2-byte Buffer for each of the 65,536 packet ids on the first
      // packet: ~7 MB of heap on a device, to save encoding two bytes per message.
      writeCache: false,
      will: {
        topic: topics.status(deviceId),
        payload: encodeMessage(status(false, [])),
        qos: 1,
        retain: true,
      },
    });

    client = c;
    let attempt = 0;
    c.on('connect', () => {
      attempt = 0;
      c.options.reconnectPeriod = MIN_BACKOFF_MS;
      log.info({ url: identity.mqtt.url }, 'connected to the fleet broker');
      c.subscribe(topics.commands(deviceId), { qos: 1 }, (err, granted) => {
        if (err || granted?.some((g) => g.qos === 128))
          log.error({ err }, 'subscription to the command topic was refused');
      });
      send(topics.status(deviceId), encodeMessage(status(true, options.getModels())), true);
      while (pending.length > 0 && c.connected) {
        const item = pending.shift()!;
        c.publish(item.topic, item.payload, { qos: 1, retain: item.retain });
      }
    });
    c.on('close', () => {
      // Exponential backoff with full jitter; mqtt.js reads reconnectPeriod before each attempt.
      attempt++;
      const ceiling = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(attempt, 10));
      c.options.reconnectPeriod = Math.round(MIN_BACKOFF_MS + Math.random() * (ceiling - MIN_BACKOFF_MS));
    });
    c.on('reconnect', () => {
      counters.reconnects++;
    });
    c.on('error', (err) => log.warn({ err: err.message }, 'mqtt link error'));
    c.on('message', (_topic, payload) => {
      const parsed = parseMessage(payload);
      const type = parsed.ok ? parsed.message.type : null;
      if (!parsed.ok || (type !== 'install' && type !== 'activate' && type !== 'rollback')) {
        counters.invalidCommands++;
        log.warn(
          { reason: parsed.ok ? `unexpected ${parsed.message.type}` : parsed.reason },
          'command rejected',
        );
        return;
      }
      for (const handler of handlers) handler(parsed.message as Command);
    });
  };

  function send(topic: string, payload: Buffer, retain = false): void {
    if (client?.connected) {
      client.publish(topic, payload, { qos: 1, retain });
      return;
    }
    if (pending.length >= options.queueLimit) {
      pending.shift();
      counters.droppedReports++;
    }
    pending.push({ topic, payload, retain });
  }

  return {
    counters,
    get connected() {
      return client?.connected ?? false;
    },
    start() {
      starting ??= start();
      return starting;
    },
    publish(message) {
      switch (message.type) {
        case 'update':
          return send(topics.updates(deviceId), encodeMessage(message));
        case 'telemetry':
        case 'drift':
          return send(topics.telemetry(deviceId), encodeMessage(message));
        case 'status':
          return send(topics.status(deviceId), encodeMessage(message), true);
        case 'samples':
        case 'install':
        case 'activate':
        case 'rollback':
          throw new Error(`${message.type} messages are not sent through publish()`);
        default:
          return assertNever(message, 'message type');
      }
    },
    async publishSamples(payload) {
      if (!client?.connected) throw new Error('not connected to the fleet broker');
      await client.publishAsync(topics.samples(deviceId), payload, { qos: 1 });
    },
    publishStatus(models) {
      send(topics.status(deviceId), encodeMessage(status(true, models)), true);
    },
    onCommand(handler) {
      handlers.push(handler);
    },
    async close() {
      closed = true;
      await starting?.catch(() => undefined);
      if (!client) return;
      // Say goodbye explicitly: a clean disconnect does not fire the last will.
      if (client.connected) {
        await client.publishAsync(
          topics.status(deviceId),
          encodeMessage(status(false, options.getModels())),
          {
            qos: 1,
            retain: true,
          },
        );
      }
      await client.endAsync();
    },
  };
}
