/**
 * Device authentication and ACL on the embedded broker, with real mqtt.js clients against a real fleet
 * server: a device sees only its own command topic, publishes only as itself, and wrong credentials are
 * refused at connect.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnrollResponse } from '../../../shared/api/enroll.js';
import { PROTOCOL_VERSION } from '../../../shared/protocol/messages.js';
import { topics } from '../../../shared/protocol/topics.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { waitFor } from '../../support/wait.js';

async function enroll(env: TestFleet): Promise<EnrollResponse> {
  const { token } = await env.api.enrollmentToken();
  const res = await fetch(`${env.fleet.httpUrl}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as EnrollResponse;
}

function connect(url: string, clientId: string, username: string, password: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId, username, password, reconnectPeriod: 0, connectTimeout: 5000 });
}

function connectError(url: string, clientId: string, username: string, password: string): Promise<Error> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      clientId,
      username,
      password,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    client.once('connect', () => {
      client.end(true);
      reject(new Error(`${username} was allowed to connect`));
    });
    client.once('error', (err) => {
      client.end(true);
      resolve(err);
    });
  });
}

/** The granted QoS of a subscription, or 128 when the broker refused it (mqtt.js rejects on 128). */
async function granted(client: MqttClient, topic: string): Promise<number> {
  try {
    const result = await client.subscribeAsync(topic, { qos: 1 });
    return result[0]!.qos;
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[]; reasonCodes?: number[] } }).packet;
    const code = packet?.granted?.[0] ?? packet?.reasonCodes?.[0];
    if (code === undefined) throw err;
    return code;
  }
}

const status = (online: boolean) => ({
  v: PROTOCOL_VERSION,
  type: 'status',
  id: `s-${Math.random()}`,
  ts: Date.now(),
  online,
  models: [],
});

describe('broker authentication and ACL', () => {
  let env: TestFleet;
  let a: EnrollResponse;
  let b: EnrollResponse;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    env = await startTestFleet();
    a = await enroll(env);
    b = await enroll(env);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await env?.close();
  });

  it("device A cannot subscribe to device B's commands, only to its own", async () => {
    const clientA = await connect(a.mqtt.url, a.deviceId, a.mqtt.username, a.mqtt.password);
    clients.push(clientA);
    expect(await granted(clientA, topics.commands(b.deviceId))).toBe(128);
    expect(await granted(clientA, 'edgefleet/v1/devices/+/commands')).toBe(128);
    expect(await granted(clientA, '#')).toBe(128);
    expect(await granted(clientA, topics.commands(a.deviceId))).toBe(1);
    expect(env.fleet.broker.counters.subscriptionsRefused).toBeGreaterThanOrEqual(3);
  });

  it('device A cannot publish as device B: the message never arrives and A is disconnected', async () => {
    const clientA = await connect(a.mqtt.url, a.deviceId, a.mqtt.username, a.mqtt.password);
    clients.push(clientA);
    const before = env.fleet.broker.counters.publishesRefused;
    const closed = new Promise<void>((resolve) => clientA.once('close', () => resolve()));
    clientA.publish(topics.status(b.deviceId), JSON.stringify(status(true)), { qos: 1 });
    await closed;
    expect(env.fleet.broker.counters.publishesRefused).toBe(before + 1);
    // The fleet never recorded anything from B.
    const deviceB = await env.api.device(b.deviceId);
    expect(deviceB.status).toBe('never_seen');
  });

  it('a wrong password, an unknown device and a client id that is not the username are refused', async () => {
    const before = env.fleet.broker.counters.connectionsRefused;
    const wrong = await connectError(a.mqtt.url, a.deviceId, a.mqtt.username, `${a.mqtt.password}x`);
    expect(wrong.message).toMatch(/not authorized|bad user name or password/i);
    await connectError(a.mqtt.url, 'dev-000000000000', 'dev-000000000000', a.mqtt.password);
    await connectError(a.mqtt.url, b.deviceId, a.mqtt.username, a.mqtt.password);
    expect(env.fleet.broker.counters.connectionsRefused).toBe(before + 3);
  });

  it('a device publishing its own status is seen online, and offline through its last will', async () => {
    const clientB = await mqtt.connectAsync(b.mqtt.url, {
      clientId: b.deviceId,
      username: b.mqtt.username,
      password: b.mqtt.password,
      reconnectPeriod: 0,
      will: {
        topic: topics.status(b.deviceId),
        payload: Buffer.from(JSON.stringify(status(false))),
        qos: 1,
        retain: true,
      },
    });
    await clientB.publishAsync(topics.status(b.deviceId), JSON.stringify(status(true)), {
      qos: 1,
      retain: true,
    });
    await waitFor(async () => (await env.api.device(b.deviceId)).status === 'online', 'device B online');
    // Drop the connection without a DISCONNECT packet: the broker publishes the will.
    clientB.stream.destroy();
    await waitFor(
      async () => (await env.api.device(b.deviceId)).status === 'offline',
      'device B offline via its will',
    );
  });

  it('malformed device messages are rejected and counted, and the server stays healthy', async () => {
    const clientA = await connect(a.mqtt.url, a.deviceId, a.mqtt.username, a.mqtt.password);
    clients.push(clientA);
    await clientA.publishAsync(topics.telemetry(a.deviceId), 'not json', { qos: 1 });
    await clientA.publishAsync(topics.updates(a.deviceId), JSON.stringify(status(true)), { qos: 1 });
    await waitFor(
      () =>
        (env.fleet.link.rejected.get('invalid_message') ?? 0) >= 1 &&
        (env.fleet.link.rejected.get('wrong_channel') ?? 0) >= 1,
      'both bad messages to be counted',
    );
    const health = await fetch(`${env.fleet.httpUrl}/api/v1/health`);
    expect(health.status).toBe(200);
  });
});
