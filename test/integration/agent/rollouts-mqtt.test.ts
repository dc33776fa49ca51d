/**
 * The device side of progressive rollouts end to end on one agent: the agent's real composition root
 * (`startAgent`) over a real MQTT broker, commanded the way the fleet commands it (install in shadow mode,
 * activate, rollback on the device's command topic) and observed through what it publishes (update reports,
 * telemetry windows) and its local inference API. Artifacts come from a real HTTP server that records every
 * request, so "no download on rollback" is checked, not assumed.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningAgent, startAgent } from '../../../agent/main.js';
import { generateSigningKey, type SigningKey } from '../../../shared/crypto/signing.js';
import {
  type Command,
  encodeMessage,
  type InstallCommand,
  PROTOCOL_VERSION,
  parseMessage,
  type RollbackCommand,
  type ShadowStats,
  type TelemetryMessage,
  type UpdateMessage,
  type UpdateState,
} from '../../../shared/protocol/messages.js';
import { topics } from '../../../shared/protocol/topics.js';
import { FEATURES, mlp, randomBatch } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';
import {
  ArtifactServer,
  Broker,
  DEVICE_ID,
  identityFor,
  installCommand,
  manifestFor,
  writeIdentity,
} from './harness.js';

process.env.EDGEFLEET_LOG_LEVEL = 'silent';

const V2 = mlp(2);
const V3 = mlp(3);

let dir: string;
let server: ArtifactServer;
let broker: Broker;
let fleet: MqttClient;
let key: SigningKey;
let agent: RunningAgent | undefined;
let reports: UpdateMessage[];
let telemetry: TelemetryMessage[];
let onlineStatuses: number;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-rollouts-mqtt-'));
  server = await ArtifactServer.start();
  broker = await Broker.start();
  key = generateSigningKey();
  reports = [];
  telemetry = [];
  onlineStatuses = 0;
  // Plays the fleet: sends commands, hears reports and telemetry.
  fleet = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: `fleet-${randomUUID()}` });
  fleet.on('message', (_topic, payload) => {
    const parsed = parseMessage(payload);
    if (!parsed.ok) return;
    if (parsed.message.type === 'update') reports.push(parsed.message);
    if (parsed.message.type === 'telemetry') telemetry.push(parsed.message);
    if (parsed.message.type === 'status' && parsed.message.online) onlineStatuses++;
  });
  await fleet.subscribeAsync(
    [topics.updates(DEVICE_ID), topics.telemetry(DEVICE_ID), topics.status(DEVICE_ID)],
    { qos: 1 },
  );
  await writeIdentity(dir, identityFor(key, undefined, `mqtt://127.0.0.1:${broker.port}`));
  agent = await start();
});
afterEach(async () => {
  await agent?.close();
  agent = undefined;
  await fleet.endAsync(true);
  await broker.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Start the agent and wait until it is online, as the fleet does before it commands a device (the agent
 * connects once its local API is up; the online status follows its command subscription on the same
 * connection, so a command sent after it is delivered).
 */
async function start(): Promise<RunningAgent> {
  const before = onlineStatuses;
  const running = await startAgent({ dataDir: dir, apiPort: 0, telemetryIntervalMs: 200, sampleRate: 0 });
  await waitFor(() => onlineStatuses > before, 'the agent to come online');
  return running;
}

async function send(command: Command): Promise<void> {
  await fleet.publishAsync(topics.commands(DEVICE_ID), encodeMessage(command), { qos: 1 });
}

/** The first report of `commandId` in `state` (bounded; says what was seen instead). */
function reportOf(commandId: string, state: UpdateState): Promise<UpdateMessage> {
  return waitFor(
    () => reports.find((r) => r.commandId === commandId && r.state === state),
    `a '${state}' report for ${commandId} (seen: ${reports
      .filter((r) => r.commandId === commandId)
      .map((r) => r.state)
      .join(', ')})`,
  );
}

async function install(
  bytes: Uint8Array,
  version: number,
  mode: 'activate' | 'shadow',
): Promise<InstallCommand> {
  const command = {
    ...installCommand(await manifestFor(bytes, version, key), server.put(bytes)),
    mode,
    shadowPercent: 100,
  };
  await send(command);
  await reportOf(command.id, mode === 'shadow' ? 'shadowing' : 'active');
  return command;
}

function rollback(version: number): RollbackCommand {
  return {
    v: PROTOCOL_VERSION,
    type: 'rollback',
    id: randomUUID(),
    ts: Date.now(),
    rolloutId: 'ro-1',
    model: { name: 'm', version },
    reason: { code: 'gate_failed', message: 'shadow_agreement 0.41 not >= 0.99' },
  };
}

async function infer(a: RunningAgent, seed: number): Promise<string> {
  const res = await fetch(`${a.apiUrl}/v2/models/m/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ name: 'input', shape: [1, FEATURES], datatype: 'FP32', data: randomBatch(seed, 1) }],
    }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { model_version: string }).model_version;
}

/** Shadow comparisons the device reported since `from` (telemetry index), summed. */
function shadowSince(from: number): Omit<ShadowStats, 'activeLatencyBuckets' | 'candidateLatencyBuckets'> {
  const sum = { mirrored: 0, compared: 0, agreed: 0, dropped: 0, errors: 0 };
  let pair = { active: { name: '', version: 0 }, candidate: { name: '', version: 0 } };
  for (const window of telemetry.slice(from)) {
    for (const s of window.shadow ?? []) {
      pair = { active: s.active, candidate: s.candidate };
      for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += s[k];
    }
  }
  return { ...pair, ...sum };
}

/** Send `n` requests, then wait until telemetry has reported all of them compared (or otherwise accounted). */
async function mirror(a: RunningAgent, n: number, seed: number) {
  const from = telemetry.length;
  for (let i = 0; i < n; i++) expect(await infer(a, seed + i)).toBe('2');
  return waitFor(
    () => {
      const s = shadowSince(from);
      return s.compared + s.dropped + s.errors >= n ? s : undefined;
    },
    `telemetry accounting for ${n} mirrored requests (so far ${JSON.stringify(shadowSince(from))})`,
  );
}

describe('progressive rollout commands over MQTT', () => {
  it('shadow → agreement in telemetry → activate → rollback to the previous slot without a download', async () => {
    const a = agent!;
    await install(V2, 2, 'activate');
    const candidate = await install(V2, 3, 'shadow'); // v3 computes the same function as v2
    expect(await infer(a, 1)).toBe('2'); // the active model answers

    const stats = await mirror(a, 30, 100);
    expect(stats).toMatchObject({
      active: { name: 'm', version: 2 },
      candidate: { name: 'm', version: 3 },
      dropped: 0,
      errors: 0,
    });
    expect(stats.agreed).toBe(stats.compared);
    expect(stats.compared).toBeGreaterThanOrEqual(30);
    // The active model's own window carries its latency histogram too.
    const served = telemetry.flatMap((t) => t.models).filter((m) => m.requests > 0);
    expect(served.some((m) => (m.latencyBuckets ?? []).reduce((x, y) => x + y, 0) === m.requests)).toBe(true);

    await send({
      v: PROTOCOL_VERSION,
      type: 'activate',
      id: randomUUID(),
      ts: Date.now(),
      rolloutId: 'ro-1',
      model: { name: 'm', version: 3 },
    });
    await reportOf(candidate.id, 'active');
    expect(
      reports
        .filter((r) => r.commandId === candidate.id)
        .map((r) => r.state)
        .slice(-3),
    ).toEqual(['shadowing', 'activating', 'active']);
    expect(await infer(a, 2)).toBe('3');

    const downloads = server.requests.length;
    const back = rollback(3);
    await send(back);
    const done = await reportOf(back.id, 'rolled_back');
    expect(done).toMatchObject({
      model: { name: 'm', version: 3 },
      serving: { name: 'm', version: 2 },
      reason: back.reason,
    });
    expect(await infer(a, 3)).toBe('2');
    expect(server.requests.length).toBe(downloads); // the previous slot, not a download
  });

  it('a candidate computing something else disagrees; it keeps shadowing across a restart; rollback discards it', async () => {
    await install(V2, 2, 'activate');
    const candidate = await install(V3, 3, 'shadow');
    const before = await mirror(agent!, 40, 200);
    expect(before.compared).toBeGreaterThan(0);
    expect(before.agreed).toBeLessThan(before.compared);

    await agent!.close();
    agent = await start();
    const after = await mirror(agent, 10, 300);
    expect(after).toMatchObject({ candidate: { name: 'm', version: 3 }, active: { name: 'm', version: 2 } });
    expect(after.compared).toBeGreaterThan(0);

    const back = rollback(3);
    await send(back);
    await reportOf(back.id, 'rolled_back');
    const discarded = await reportOf(candidate.id, 'rolled_back');
    expect(discarded).toMatchObject({ reason: back.reason, serving: { name: 'm', version: 2 } });
    const from = telemetry.length;
    expect(await infer(agent, 4)).toBe('2');
    // Nothing is mirrored any more: the next windows carry no shadow comparisons.
    await waitFor(() => telemetry.length >= from + 2, 'two more telemetry windows');
    expect(shadowSince(from).mirrored).toBe(0);
  });

  it('an activate or rollback for a version this device never had changes nothing and does not crash it', async () => {
    await install(V2, 2, 'activate');
    await send({
      v: PROTOCOL_VERSION,
      type: 'activate',
      id: randomUUID(),
      ts: Date.now(),
      rolloutId: 'ro-x',
      model: { name: 'm', version: 9 },
    });
    const back = rollback(9);
    await send(back);
    const done = await reportOf(back.id, 'rolled_back');
    expect(done.serving).toEqual({ name: 'm', version: 2 });
    expect(await infer(agent!, 5)).toBe('2');
  });
});
