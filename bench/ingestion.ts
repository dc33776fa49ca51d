/**
 * Pool ingestion over MQTT: 10 enrolled devices each publish gzip'd sample batches (32 features, QoS 1)
 * to a real fleet server with the embedded broker; the figure is samples/s from the first publish until
 * the pool has stored every one (validated, written to LevelDB). Baseline in the same run: the same
 * batches published to a topic nobody ingests, i.e. what the broker alone moves.
 * Goal: at least 50,000 samples/s on this 2-core machine.
 */
import { gzipSync } from 'node:zlib';
import mqtt from 'mqtt';
import type { EnrollResponse } from '../shared/api/enroll.js';
import { mulberry32 } from '../shared/onnx/mlp.js';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { topics } from '../shared/protocol/topics.js';
import { startTestFleet } from '../test/support/fleet.js';
import { waitFor } from '../test/support/wait.js';

const DEVICES = 10;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 40);
const BATCH = 500;
const FEATURES = 32;

export default async function main(): Promise<void> {
  const env = await startTestFleet([], { logLevel: 'error' });
  try {
    await env.api.request('POST', '/api/v1/tasks', {
      name: 'bench',
      kind: 'classification',
      features: Array.from({ length: FEATURES }, (_, i) => `f${i}`),
      classes: ['a', 'b'],
      label: 'label',
      model: 'bench',
    });
    const devices: EnrollResponse[] = [];
    for (let i = 0; i < DEVICES; i++) {
      const { token } = await env.api.enrollmentToken();
      const res = await fetch(`${env.fleet.httpUrl}/api/v1/enroll`, {
        method: 'POST',
        body: JSON.stringify({ token }),
      });
      devices.push((await res.json()) as EnrollResponse);
    }
    const payloads = devices.map((d, di) =>
      Array.from({ length: BATCHES }, (_, b) => {
        const rand = mulberry32(di * 1000 + b);
        const samples = Array.from({ length: BATCH }, (_, s) => ({
          id: `${b}-${s}`,
          features: Array.from({ length: FEATURES }, () => Math.round(rand() * 1e4) / 1e4),
          output: [0.3, 0.7],
          label: s % 2 ? 'a' : 'b',
          ts: Date.now(),
        }));
        return gzipSync(
          Buffer.from(
            JSON.stringify({
              v: PROTOCOL_VERSION,
              type: 'samples',
              id: `${d.deviceId}-${b}`,
              ts: Date.now(),
              model: { name: 'bench', version: 1 },
              samples,
            }),
          ),
        );
      }),
    );
    const clients = await Promise.all(
      devices.map((d) =>
        mqtt.connectAsync(d.mqtt.url, {
          clientId: d.deviceId,
          username: d.mqtt.username,
          password: d.mqtt.password,
        }),
      ),
    );
    const total = DEVICES * BATCHES * BATCH;
    console.log(
      `ingestion bench: ${DEVICES} devices × ${BATCHES} batches × ${BATCH} samples × ${FEATURES} features = ${total} samples`,
    );

    // Baseline: the same bytes on each device's telemetry channel, which the fleet refuses at once (gzip is
    // not JSON): broker, ACL and the fleet's link, without decompression, validation or storage.
    let t0 = performance.now();
    await Promise.all(
      clients.map((c, i) =>
        Promise.all(
          payloads[i]!.map((p) => c.publishAsync(topics.telemetry(devices[i]!.deviceId), p, { qos: 1 })),
        ),
      ),
    );
    const brokerMs = performance.now() - t0;

    t0 = performance.now();
    await Promise.all(
      clients.map((c, i) =>
        Promise.all(
          payloads[i]!.map((p) => c.publishAsync(topics.samples(devices[i]!.deviceId), p, { qos: 1 })),
        ),
      ),
    );
    const publishedMs = performance.now() - t0;
    await waitFor(
      async () => (await env.fleet.pool.acceptedCount(await env.fleet.pool.getTask('bench'))) === total,
      'every sample to be stored',
      300_000,
      50,
    );
    const storedMs = performance.now() - t0;
    await Promise.all(clients.map((c) => c.endAsync()));
    const rate = (ms: number) => Math.round(total / (ms / 1000));
    console.log(`  broker + link, refused unread (baseline):  ${rate(brokerMs).toLocaleString()} samples/s`);
    console.log(
      `  published to the samples channel:           ${rate(publishedMs).toLocaleString()} samples/s`,
    );
    console.log(
      `  validated and stored in the pool:           ${rate(storedMs).toLocaleString()} samples/s (goal ≥ 50,000) ${rate(storedMs) >= 50_000 ? 'PASS' : 'MISS'}`,
    );
  } finally {
    await env.close();
  }
}
