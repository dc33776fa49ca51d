/**
 * The events stream's `update` events against a real fleet server, broker and MQTT device client: a device
 * coming online, a rollout created through the API, and then the device's install progress — which leaves no
 * audit entry — each reach an open stream as `update` naming what to refetch.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COALESCE_MS } from '../../../fleet-server/api/changes.js';
import type { EnrollResponse } from '../../../shared/api/enroll.js';
import { type InstallCommand, PROTOCOL_VERSION } from '../../../shared/protocol/messages.js';
import { topics } from '../../../shared/protocol/topics.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { mlp } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('live updates on GET /api/v1/events', () => {
  let env: TestFleet;
  let device: EnrollResponse;
  let client: MqttClient | undefined;

  beforeAll(async () => {
    env = await startTestFleet();
    const { token } = await env.api.enrollmentToken();
    device = await env.api.request('POST', '/api/v1/enroll', { token });
    await env.api.pushModel('clf', mlp(3));
  });
  afterAll(async () => {
    await client?.endAsync(true);
    await env?.close();
  });

  it('streams `update` for a device coming online and for a rollout, device progress included', async () => {
    const abort = new AbortController();
    const res = await fetch(`${env.fleet.httpUrl}/api/v1/events`, {
      headers: { authorization: `Bearer ${env.fleet.adminToken}` },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    // A read that lost a race with a timer is kept, so no chunk is dropped.
    let pending: ReturnType<typeof reader.read> | undefined;
    /** Read one chunk into `text`; false when none came within `timeoutMs`. */
    const readChunk = async (timeoutMs?: number) => {
      pending ??= reader.read();
      const timer = timeoutMs === undefined ? undefined : sleep(timeoutMs).then(() => null);
      const result = await (timer ? Promise.race([pending, timer]) : pending);
      if (result === null) return false;
      pending = undefined;
      if (result.done) throw new Error(`stream ended: ${text}`);
      text += result.value;
      return true;
    };
    /** Read until `pattern` matches the stream from `from` on. */
    const until = async (pattern: RegExp, from = 0) => {
      while (!pattern.test(text.slice(from))) await readChunk();
    };
    /** Read until the stream has been quiet for `ms`. */
    const drain = async (ms: number) => {
      while (await readChunk(ms));
    };
    const update = (kind: string, id: string) =>
      new RegExp(
        `event: update\\ndata: ${JSON.stringify({ kind, id }).replace(/[{}[\]()*+?.\\^$|]/g, '\\$&')}\\n`,
      );
    await until(/event: ready/);

    client = await mqtt.connectAsync(device.mqtt.url, {
      clientId: device.deviceId,
      username: device.mqtt.username,
      password: device.mqtt.password,
      reconnectPeriod: 0,
    });
    const commands: InstallCommand[] = [];
    client.on('message', (_topic, payload) => commands.push(JSON.parse(payload.toString())));
    await client.subscribeAsync(topics.commands(device.deviceId), { qos: 1 });
    const envelope = () => ({ v: PROTOCOL_VERSION, id: crypto.randomUUID(), ts: Date.now() });
    await client.publishAsync(
      topics.status(device.deviceId),
      JSON.stringify({ ...envelope(), type: 'status', online: true, models: [] }),
      { qos: 1 },
    );
    await until(update('device', device.deviceId));

    const rollout = await env.api.createRollout('clf', 1, { devices: [device.deviceId] });
    await until(update('rollout', rollout.id));
    const install = await waitFor(() => commands.find((c) => c.type === 'install'), 'the install command');
    // Past the coalescing window of the creation's writes, everything sent so far read: what follows comes
    // from the device's report.
    await drain(2 * COALESCE_MS);
    const mark = text.length;
    await client.publishAsync(
      topics.updates(device.deviceId),
      JSON.stringify({
        ...envelope(),
        type: 'update',
        commandId: install.id,
        rolloutId: rollout.id,
        model: { name: 'clf', version: 1 },
        state: 'downloading',
      }),
      { qos: 1 },
    );
    await until(update('rollout', rollout.id), mark);
    expect(text.slice(mark)).not.toMatch(/event: change/);
    const after = await env.api.rollout(rollout.id);
    expect(after.devices[0]).toMatchObject({ deviceId: device.deviceId, state: 'downloading' });

    abort.abort();
    await reader.cancel().catch(() => undefined);
  });
});
