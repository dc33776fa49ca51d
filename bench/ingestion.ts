/**
 * Pool ingestion over MQTT: 10 enrolled devices (simulated in their own process, as devices are other
 * machines) each publish gzip'd sample batches (32 features, QoS 1) to a real fleet server with the
 * embedded broker; the figure is samples/s from the first publish until
 * the pool has stored every one (validated, written to LevelDB). Baseline in the same run: the same
 * batches published to a topic nobody ingests, i.e. what the broker alone moves.
 * Goal: at least 50,000 samples/s on this 2-core machine.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { EnrollResponse } from '../shared/api/enroll.js';
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
    const publisher = await startDevices(devices);
    const total = DEVICES * BATCHES * BATCH;
    console.log(
      `ingestion bench: ${DEVICES} devices × ${BATCHES} batches × ${BATCH} samples × ${FEATURES} features = ${total} samples`,
    );

    // Baseline: the same bytes on each device's telemetry channel, which the fleet refuses at once (gzip is
    // not JSON): broker, ACL and the fleet's link, without decompression, validation or storage.
    const brokerMs = await publisher.publish('telemetry');

    // The fleet server runs in this process: its CPU time per sample is a steadier figure than samples/s on
    // a machine whose other core is busy with the devices, LevelDB's threads and whatever else runs there.
    const cpu0 = process.cpuUsage();
    const loop0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    const publishedMs = await publisher.publish('samples');
    await waitFor(
      async () => (await env.fleet.pool.acceptedCount(await env.fleet.pool.getTask('bench'))) === total,
      'every sample to be stored',
      300_000,
      20,
    );
    const storedMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const loop = performance.eventLoopUtilization(loop0);
    await publisher.stop();
    const rate = (ms: number) => Math.round(total / (ms / 1000));
    console.log(`  broker + link, refused unread (baseline):  ${rate(brokerMs).toLocaleString()} samples/s`);
    console.log(
      `  published to the samples channel:           ${rate(publishedMs).toLocaleString()} samples/s`,
    );
    console.log(
      `  fleet server CPU while storing:             ${((cpu.user + cpu.system) / total).toFixed(1)} µs per sample (all threads; event loop busy ${(loop.utilization * 100).toFixed(0)}%)`,
    );
    console.log(
      `  validated and stored in the pool:           ${rate(storedMs).toLocaleString()} samples/s (goal ≥ 50,000) ${rate(storedMs) >= 50_000 ? 'PASS' : 'MISS'}`,
    );
  } finally {
    await env.close();
  }
}

/** The devices' process (bench/ingestion-devices.ts): connected, batches prepared, publishing on request. */
async function startDevices(devices: EnrollResponse[]) {
  const script = fileURLToPath(new URL('./ingestion-devices.ts', import.meta.url));
  const spec = JSON.stringify({ devices, batches: BATCHES, batchSize: BATCH, features: FEATURES });
  const child = spawn(process.execPath, ['--import', 'tsx', script, spec], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('the devices process ended early');
    return value as string;
  };
  if ((await next()) !== 'ready') throw new Error('the devices process did not get ready');
  return {
    async publish(channel: 'telemetry' | 'samples'): Promise<number> {
      child.stdin!.write(`${channel}\n`);
      const line = await next();
      const m = /^published (\S+)$/.exec(line);
      if (!m) throw new Error(`unexpected line from the devices process: ${line}`);
      return Number(m[1]);
    },
    async stop(): Promise<void> {
      child.stdin!.write('quit\n');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
