/**
 * Bad sample batches over real MQTT, published with a real device's credentials: each kind is refused with
 * its reason, counted against the device, the good samples of a mixed batch are kept, and the server stays
 * healthy throughout.
 */
import { gzipSync } from 'node:zlib';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnrollResponse } from '../../../shared/api/enroll.js';
import { PROTOCOL_VERSION } from '../../../shared/protocol/messages.js';
import { topics } from '../../../shared/protocol/topics.js';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { waitFor } from '../../support/wait.js';

describe('sample ingestion refuses bad input with counted reasons', () => {
  let env: TestFleet;
  let device: EnrollResponse;
  let client: MqttClient;

  const batch = (model: string, samples: unknown[], extra: Record<string, unknown> = {}) =>
    gzipSync(
      Buffer.from(
        JSON.stringify({
          v: PROTOCOL_VERSION,
          type: 'samples',
          id: `b-${Math.random()}`,
          ts: 1,
          model: { name: model, version: 1 },
          samples,
          ...extra,
        }),
      ),
    );
  const sample = (id: string, features: unknown[], label: unknown = 'ok') => ({
    id,
    features,
    output: [0.5, 0.5],
    label,
    ts: 1,
  });

  beforeAll(async () => {
    env = await startTestFleet([], { maxSampleBatchBytes: 64 * 1024 });
    await env.api.request('POST', '/api/v1/tasks', {
      name: 'sorting',
      kind: 'classification',
      features: ['a', 'b'],
      classes: ['ok', 'bad'],
      label: 'label',
      model: 'sorter',
    });
    const { token } = await env.api.enrollmentToken();
    const res = await fetch(`${env.fleet.httpUrl}/api/v1/enroll`, {
      method: 'POST',
      body: JSON.stringify({ token }),
    });
    device = (await res.json()) as EnrollResponse;
    client = await mqtt.connectAsync(device.mqtt.url, {
      clientId: device.deviceId,
      username: device.mqtt.username,
      password: device.mqtt.password,
      reconnectPeriod: 200,
    });
  });
  afterAll(async () => {
    await client?.endAsync(true);
    await env?.close();
  });

  it('counts every kind of refusal against the device and keeps the good samples', async () => {
    const topic = topics.samples(device.deviceId);
    // One mixed batch: good, wrong shape, non-finite (1e999 parses to Infinity), label outside the classes.
    const mixed =
      `{"v":1,"type":"samples","id":"m1","ts":1,"model":{"name":"sorter","version":1},"dropped":4,"samples":[` +
      `{"id":"s1","features":[1,2],"output":[1],"label":"ok","ts":1},` +
      `{"id":"s2","features":[1],"output":[1],"label":"ok","ts":1},` +
      `{"id":"s3","features":[1e999,2],"output":[1],"label":"ok","ts":1},` +
      `{"id":"s4","features":[1,2],"output":[1],"label":"melted","ts":1}]}`;
    await client.publishAsync(topic, gzipSync(Buffer.from(mixed)), { qos: 1 });
    await client.publishAsync(topic, batch('no-such-model', [sample('x', [1, 2])]), { qos: 1 });
    await client.publishAsync(
      topic,
      batch(
        'sorter',
        Array.from({ length: 3000 }, (_, i) => sample(`big${i}`, [i, i])),
      ),
      { qos: 1 },
    );
    await client.publishAsync(topic, Buffer.from('not gzip at all'), { qos: 1 });
    await client.publishAsync(topic, gzipSync(Buffer.from('{"v":1,"type":"samples"}')), { qos: 1 });

    const expected = [
      { task: 'sorting', reason: 'wrong_feature_count', count: 1 },
      { task: 'sorting', reason: 'non_finite_feature', count: 1 },
      { task: 'sorting', reason: 'label_not_in_classes', count: 1 },
      { task: 'sorting', reason: 'dropped_on_device', count: 4 },
      { task: 'model:no-such-model', reason: 'unknown_task', count: 1 },
      { task: '(unparsed)', reason: 'oversize_batch', count: 1 },
      { task: '(unparsed)', reason: 'malformed', count: 2 },
    ].map((e) => ({ ...e, source: device.deviceId }));
    const rejections = await waitFor(async () => {
      const { rejections } = await env.api.request('GET', '/api/v1/pool/rejections');
      return rejections.length === expected.length ? rejections : undefined;
    }, 'all refusals to be counted');
    expect(rejections).toEqual(expect.arrayContaining(expected));
    const task = await env.api.request('GET', '/api/v1/tasks/sorting');
    expect(task.stats.acceptedBySource).toEqual({ [device.deviceId]: 1 });
    expect((await fetch(`${env.fleet.httpUrl}/api/v1/health`)).status).toBe(200);

    // The device's connection survived all of it, and a good batch still goes in.
    await client.publishAsync(topic, batch('sorter', [sample('s5', [3, 4], 'bad')]), { qos: 1 });
    await waitFor(
      async () => (await env.api.request('GET', '/api/v1/tasks/sorting')).stats.samples === 2,
      'the good batch',
    );
  });
});
