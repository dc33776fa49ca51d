/**
 * The agent's MQTT link against a real broker (aedes on an ephemeral loopback port) and a real observer
 * client: retained online status with the active models, install commands delivered (also those sent while
 * the device was away: persistent session, QoS 1), invalid commands counted and survived, reports queued
 * while the broker is unreachable and flushed in order on reconnect, the last will on a dropped link, and an
 * explicit offline status on close.
 */
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectLink, type Link } from '../../../agent/link/mqtt.js';
import { generateSigningKey } from '../../../shared/crypto/signing.js';
import {
  type ActiveModel,
  encodeMessage,
  type Message,
  PROTOCOL_VERSION,
  parseMessage,
  type UpdateMessage,
} from '../../../shared/protocol/messages.js';
import { topics } from '../../../shared/protocol/topics.js';
import { waitFor } from '../../support/wait.js';
import { Broker, DEVICE_ID, identityFor, installCommand } from './harness.js';

interface Seen {
  topic: string;
  retain: boolean;
  message: Message | null;
}

let broker: Broker;
let observer: MqttClient;
let seen: Seen[];
let link: Link | undefined;
let models: ActiveModel[];

beforeEach(async () => {
  broker = await Broker.start();
  seen = [];
  models = [{ name: 'm', version: 2, executionProvider: 'cpu' }];
  // A persistent session, so the observer misses nothing while the broker's listener is away either.
  observer = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
    clientId: `observer-${randomUUID()}`,
    clean: false,
  });
  observer.on('message', (topic, payload, packet) => {
    const parsed = parseMessage(payload);
    seen.push({ topic, retain: packet.retain, message: parsed.ok ? parsed.message : null });
  });
  await observer.subscribeAsync(`${topics.prefix(DEVICE_ID)}+`, { qos: 1 });
});
afterEach(async () => {
  await link?.close();
  link = undefined;
  await observer.endAsync(true);
  await broker.close();
});

function connect(queueLimit = 100, start = true): Link {
  link = connectLink({
    identity: { ...identityFor(generateSigningKey()), mqtt: mqttIdentity() },
    agentVersion: 'test',
    queueLimit,
    newId: randomUUID,
    log: pino({ level: 'silent' }),
    getModels: () => models,
  });
  if (start) void link.start();
  return link;
}

function mqttIdentity() {
  return {
    url: `mqtt://127.0.0.1:${broker.port}`,
    username: DEVICE_ID,
    password: 'device-secret-0123456789',
  };
}

const statuses = () =>
  seen
    .filter((s) => s.topic === topics.status(DEVICE_ID))
    .map((s) => s.message as Extract<Message, { type: 'status' }>);

function update(n: number): UpdateMessage {
  return {
    v: PROTOCOL_VERSION,
    type: 'update',
    id: `u-${n}`,
    ts: Date.now(),
    commandId: `c-${n}`,
    rolloutId: 'r',
    model: { name: 'm', version: 3 },
    state: 'downloading',
    reason: null,
    executionProvider: null,
    serving: null,
  };
}

/** Resolves once the device's command subscription is live (an install published now will reach it). */
async function subscribed(): Promise<void> {
  await waitFor(
    () =>
      Object.values(
        (broker.aedes as unknown as { clients: Record<string, { subscriptions: Record<string, unknown> }> })
          .clients,
      ).some((c) => topics.commands(DEVICE_ID) in (c.subscriptions ?? {})),
    'the device to subscribe to its command topic',
  );
}

describe('agent MQTT link', () => {
  it('announces itself online with its models (retained) and receives install commands', async () => {
    const l = connect();
    const commands: string[] = [];
    l.onCommand((c) => commands.push(c.id));
    await waitFor(() => statuses().some((s) => s?.online), 'an online status');
    expect(statuses()[0]).toMatchObject({ type: 'status', online: true, agentVersion: 'test', models });
    await subscribed();

    const command = installCommand('{"name":"m","version":3}', 'http://fleet.invalid/a');
    await observer.publishAsync(topics.commands(DEVICE_ID), encodeMessage(command), { qos: 1 });
    await waitFor(() => commands.length === 1, 'the install command to reach the handler');
    expect(commands).toEqual([command.id]);

    // Retained: a late subscriber (the fleet after a restart) still learns the device is online.
    const late = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'late' });
    const retained = new Promise<Message | null>((resolve) =>
      late.on('message', (_t, payload, packet) => {
        if (packet.retain) resolve((parseMessage(payload) as { message?: Message }).message ?? null);
      }),
    );
    await late.subscribeAsync(topics.status(DEVICE_ID), { qos: 1 });
    await expect(retained).resolves.toMatchObject({ type: 'status', online: true });
    await late.endAsync(true);
  });

  it('holds reports made before start() and sends them, in order, once connected; close() before start() is a no-op', async () => {
    const idle = connect(100, false);
    idle.publish(update(1));
    expect(idle.connected).toBe(false);
    await expect(idle.publishSamples(Buffer.from('x'))).rejects.toThrow(/not connected/);
    await idle.close();
    link = undefined;

    const l = connect(100, false);
    l.publish(update(1));
    l.publish(update(2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen.filter((s) => s.topic === topics.updates(DEVICE_ID))).toEqual([]); // nothing before start()
    await Promise.all([l.start(), l.start()]); // idempotent: one client
    await waitFor(
      () => seen.filter((s) => s.topic === topics.updates(DEVICE_ID)).length === 2,
      'the reports held until start',
    );
    const delivered = seen.filter((s) => s.topic === topics.updates(DEVICE_ID)).map((s) => s.message?.id);
    expect(delivered).toEqual(['u-1', 'u-2']);
    // One client, connected once: a second would announce itself online again (and take over the session).
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(statuses().filter((st) => st?.online)).toHaveLength(1);
    expect(l.counters.reconnects).toBe(0);
  });

  it('publishes a new status when the active models change', async () => {
    const l = connect();
    await waitFor(() => statuses().length === 1, 'the first status');
    l.publishStatus([{ name: 'm', version: 3, executionProvider: 'cpu' }]);
    await waitFor(() => statuses().length === 2, 'the status after activation');
    expect(statuses()[1]?.models).toEqual([{ name: 'm', version: 3, executionProvider: 'cpu' }]);
  });

  it('counts and survives malformed or unexpected commands', async () => {
    const l = connect();
    const commands: string[] = [];
    l.onCommand((c) => commands.push(c.id));
    await subscribed();
    const topic = topics.commands(DEVICE_ID);
    await observer.publishAsync(topic, 'not json', { qos: 1 });
    await observer.publishAsync(topic, JSON.stringify({ v: 1, type: 'install' }), { qos: 1 });
    await observer.publishAsync(topic, encodeMessage(update(1)), { qos: 1 }); // valid message, wrong direction
    const good = installCommand('{"name":"m","version":3}', 'http://fleet.invalid/a');
    await observer.publishAsync(topic, encodeMessage(good), { qos: 1 });
    await waitFor(() => commands.length === 1, 'the valid command after the bad ones');
    expect(l.counters.invalidCommands).toBe(3);
    expect(l.connected).toBe(true);
  });

  it('keeps reports while the broker is away and delivers them in order after reconnecting', async () => {
    const l = connect(3);
    await waitFor(() => l.connected, 'the first connection');
    const port = broker.port;
    await broker.goDown();
    await waitFor(() => !l.connected, 'the link to notice the broker is gone');
    for (let n = 1; n <= 4; n++) l.publish(update(n));
    expect(l.counters.droppedReports).toBe(1); // bounded: the oldest went

    await broker.listen(port);
    await waitFor(
      () => seen.filter((s) => s.topic === topics.updates(DEVICE_ID)).length === 3,
      'the queued reports after reconnecting',
    );
    const delivered = seen.filter((s) => s.topic === topics.updates(DEVICE_ID)).map((s) => s.message?.id);
    expect(delivered).toEqual(['u-2', 'u-3', 'u-4']);
    expect(l.counters.reconnects).toBeGreaterThan(0);
  });

  it('gets the commands sent while it was away (persistent session, QoS 1)', async () => {
    const l = connect();
    const commands: string[] = [];
    l.onCommand((c) => commands.push(c.id));
    await subscribed();
    const gone = new Promise<void>((resolve) => broker.aedes.once('clientDisconnect', () => resolve()));
    broker.kick(DEVICE_ID);
    await gone;
    const command = installCommand('{"name":"m","version":3}', 'http://fleet.invalid/a');
    await observer.publishAsync(topics.commands(DEVICE_ID), encodeMessage(command), { qos: 1 });
    expect(commands).toEqual([]);
    await waitFor(() => commands.length === 1, 'the command queued for the offline session');
    expect(commands).toEqual([command.id]);
  });

  it('a dropped link publishes the retained offline will; close says offline itself', async () => {
    const l = connect();
    await waitFor(() => statuses().some((s) => s?.online), 'an online status');
    broker.kick(DEVICE_ID);
    await waitFor(() => statuses().some((s) => s?.online === false), 'the last will');
    expect(statuses().find((s) => s?.online === false)).toMatchObject({ models: [] });

    await waitFor(() => statuses().filter((s) => s?.online).length === 2, 'online again after reconnecting');
    await l.close();
    link = undefined;
    await waitFor(
      () => statuses().filter((s) => s?.online === false).length === 2,
      'the offline status on close',
    );
    expect(statuses().at(-1)).toMatchObject({ online: false, models });
  });
});
