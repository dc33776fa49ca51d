/**
 * The devices of the ingestion bench, in their own process (devices are other machines: their publishing
 * must not be charged to the fleet server). Reads `{ devices, batches, batchSize, features }` as JSON from
 * argv[2]; prepares every gzip'd batch, connects, prints `ready`; then on each stdin line `telemetry` or
 * `samples` publishes every batch to that channel (QoS 1) and prints `published <ms>`.
 */
import { createInterface } from 'node:readline';
import { gzipSync } from 'node:zlib';
import mqtt from 'mqtt';
import type { EnrollResponse } from '../shared/api/enroll.js';
import { mulberry32 } from '../shared/onnx/mlp.js';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { topics } from '../shared/protocol/topics.js';

const spec = JSON.parse(process.argv[2]!) as {
  devices: EnrollResponse[];
  batches: number;
  batchSize: number;
  features: number;
};
const payloads = spec.devices.map((d, di) =>
  Array.from({ length: spec.batches }, (_, b) => {
    const rand = mulberry32(di * 1000 + b);
    const samples = Array.from({ length: spec.batchSize }, (_, s) => ({
      id: `${b}-${s}`,
      features: Array.from({ length: spec.features }, () => Math.round(rand() * 1e4) / 1e4),
      output: [0.3, 0.7],
      label: s % 2 ? 'a' : 'b',
      ts: Date.now(),
    }));
    const message = {
      v: PROTOCOL_VERSION,
      type: 'samples',
      id: `${d.deviceId}-${b}`,
      ts: Date.now(),
      model: { name: 'bench', version: 1 },
      samples,
    };
    return gzipSync(Buffer.from(JSON.stringify(message)));
  }),
);
const clients = await Promise.all(
  spec.devices.map((d) =>
    mqtt.connectAsync(d.mqtt.url, {
      clientId: d.deviceId,
      username: d.mqtt.username,
      password: d.mqtt.password,
    }),
  ),
);
console.log('ready');
for await (const line of createInterface({ input: process.stdin })) {
  const channel = line.trim();
  if (channel === 'quit') break;
  const t0 = performance.now();
  await Promise.all(
    clients.map((c, i) =>
      Promise.all(
        payloads[i]!.map((p) =>
          c.publishAsync(
            channel === 'samples'
              ? topics.samples(spec.devices[i]!.deviceId)
              : topics.telemetry(spec.devices[i]!.deviceId),
            p,
            { qos: 1 },
          ),
        ),
      ),
    ),
  );
  console.log(`published ${performance.now() - t0}`);
}
await Promise.all(clients.map((c) => c.endAsync()));
process.exit(0);
