/**
 * Crash safety across restarts: an update stops for good right after each persisted state (what SIGKILL
 * leaves: the LevelDB record, the files on disk, nothing in memory); then the agent's real composition root
 * (`startAgent`) starts over the same data dir. It must serve a valid model at once and finish the update
 * from where it was persisted. A crash loop ends in `crash_loop` with the previous model still serving; an
 * active slot that no longer loads falls back to the other slot. The restarted agent reports over a real MQTT
 * broker, so each test waits for the update's final report instead of polling.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningAgent, startAgent } from '../../../agent/main.js';
import { AgentDb } from '../../../agent/store.js';
import { generateSigningKey, type SigningKey, sha256Hex } from '../../../shared/crypto/signing.js';
import { parseMessage, type UpdateMessage, type UpdateState } from '../../../shared/protocol/messages.js';
import { topics } from '../../../shared/protocol/topics.js';
import { FEATURES, mlp } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';
import {
  ArtifactServer,
  Broker,
  DEVICE_ID,
  identityFor,
  installCommand,
  manifestFor,
  maxAbsDiff,
  openDevice,
  runDirect,
  SAMPLE,
  within,
  writeIdentity,
} from './harness.js';

// The in-process agent logs pino JSON to stderr; these tests read its state, not its log.
process.env.EDGEFLEET_LOG_LEVEL = 'silent';

const V2 = mlp(2);
const V3 = mlp(3);

let dir: string;
let server: ArtifactServer;
let broker: Broker;
let observer: MqttClient;
let key: SigningKey;
let agent: RunningAgent | undefined;
/** Update reports the restarted agents published, in order. */
let reports: UpdateMessage[];
let reported: () => void = () => undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-restart-'));
  server = await ArtifactServer.start();
  broker = await Broker.start();
  key = generateSigningKey();
  reports = [];
  observer = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: `obs-${randomUUID()}` });
  observer.on('message', (_topic, payload) => {
    const parsed = parseMessage(payload);
    if (parsed.ok && parsed.message.type === 'update') {
      reports.push(parsed.message);
      reported();
    }
  });
  await observer.subscribeAsync(topics.updates(DEVICE_ID), { qos: 1 });
  await writeIdentity(dir, identityFor(key, undefined, `mqtt://127.0.0.1:${broker.port}`));
});
afterEach(async () => {
  await agent?.close();
  agent = undefined;
  await observer.endAsync(true);
  await broker.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** Start the agent over `dir` as a fresh process would. */
async function restart(faults: Parameters<typeof startAgent>[1] = {}): Promise<RunningAgent> {
  // A step parked by the fault hook never reaches a boundary: shutdown gives up after a short grace, and the
  // next start counts the re-entry (a hung step is not a clean stop).
  agent = await startAgent(
    { dataDir: dir, apiPort: 0, telemetryIntervalMs: 3_600_000, shutdownGraceMs: 200 },
    faults,
  );
  return agent;
}

/** The final (active|failed) report of a command from the running agent. */
async function outcome(commandId: string): Promise<UpdateMessage> {
  const final = () =>
    reports.find((r) => r.commandId === commandId && (r.state === 'active' || r.state === 'failed'));
  const deadline = Date.now() + 30_000;
  while (!final()) {
    if (Date.now() > deadline) {
      const seen = reports.filter((r) => r.commandId === commandId).map((r) => r.state);
      throw new Error(`no final report for ${commandId} after 30 s (seen: ${seen.join(', ') || 'none'})`);
    }
    await new Promise<void>((resolve) => {
      reported = resolve;
      setTimeout(resolve, 200);
    });
  }
  return final()!;
}

async function stopAgent(): Promise<void> {
  await agent?.close();
  agent = undefined;
}

async function servedVersion(a: RunningAgent): Promise<number | null> {
  const res = await fetch(`${a.apiUrl}/v2/models/m`);
  if (res.status === 404) return null;
  return Number(((await res.json()) as { versions: string[] }).versions[0]);
}

async function expectServes(a: RunningAgent, version: number, bytes: Uint8Array): Promise<void> {
  await waitFor(
    async () => (await servedVersion(a)) === version,
    `the agent to serve m v${version}`,
    30_000,
    20,
  );
  const res = await fetch(`${a.apiUrl}/v2/models/m/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ name: 'input', shape: [1, FEATURES], datatype: 'FP32', data: SAMPLE }],
    }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { model_version: string; outputs: { data: number[] }[] };
  expect(body.model_version).toBe(String(version));
  expect(maxAbsDiff(body.outputs[0]!.data, await runDirect(bytes, SAMPLE))).toBeLessThanOrEqual(1e-6);
}

/** The persisted update record (read after the agent closed its LevelDB). */
async function recordOf(commandId: string) {
  const db = await AgentDb.open(join(dir, 'db'));
  try {
    return await db.updates().get(commandId);
  } finally {
    await db.close();
  }
}

/** Install v2 normally (optional), then start v3 and "kill" the device right after `crashAt` is persisted. */
async function crashDuringV3(
  crashAt: UpdateState,
  withPrevious: boolean,
): Promise<{ commandId: string; partBytes: number }> {
  const identity = identityFor(key);
  if (withPrevious) {
    const d = await openDevice({ dataDir: dir, identity });
    const reports = await d.install(installCommand(await manifestFor(V2, 2, key), server.put(V2)));
    expect(reports.at(-1)?.state).toBe('active');
    await d.close();
  }
  const part = join(dir, 'downloads', `${sha256Hex(V3)}.part`);
  let partBytes = -1;
  const d = await openDevice({
    dataDir: dir,
    identity,
    crashAt,
    onFirstChunk: async () => {
      partBytes = (await stat(part)).size;
    },
  });
  const url = server.put(V3);
  // A stalled link keeps the download "in flight" when the device dies in `downloading`.
  if (crashAt === 'downloading') server.fault(sha256Hex(V3), { stallAfter: 10_000 });
  const command = installCommand(await manifestFor(V3, 3, key), url);
  void d.driver.submit(command);
  await within(
    d.crashed,
    30_000,
    `the update to reach ${crashAt} (reports so far: ${d.reports.map((r) => r.state)})`,
  );
  await d.close();
  server.dropConnections();
  const persisted = await recordOf(command.id);
  expect(persisted?.state).toBe(crashAt);
  return { commandId: command.id, partBytes };
}

const CRASH_STATES: UpdateState[] = [
  'received',
  'downloading',
  'verifying',
  'staged',
  'loading',
  'activating',
];

describe.each([
  { withPrevious: true, label: 'v2 serving' },
  { withPrevious: false, label: 'first install' },
])('restart after a crash during an update ($label)', ({ withPrevious }) => {
  it.each(CRASH_STATES)(
    'crash in %s: serves a valid model at once and finishes the update',
    async (crashAt) => {
      const { commandId, partBytes } = await crashDuringV3(crashAt, withPrevious);
      const a = await restart();
      // Right after start, before the update is done, the device serves what it had (v2, v3 or nothing yet).
      const first = await servedVersion(a);
      expect(withPrevious ? [2, 3] : [null, 3]).toContain(first);
      expect(await outcome(commandId)).toMatchObject({
        state: 'active',
        executionProvider: 'cpu',
        serving: { name: 'm', version: 3 },
      });
      await expectServes(a, 3, V3);
      await stopAgent();

      const record = await recordOf(commandId);
      expect(record).toMatchObject({ state: 'active', reason: null, reentries: { [crashAt]: 1 } });
      if (crashAt === 'downloading') {
        // Resumed from the bytes on disk, not from zero.
        expect(partBytes).toBeGreaterThan(0);
        expect(server.requestsFor(sha256Hex(V3)).map((r) => r.range)).toEqual([
          undefined,
          `bytes=${partBytes}-`,
        ]);
      }
    },
  );
});

describe('restart edge cases', () => {
  // The crash hit in the middle of an effect: part of its work is on disk, the record still names the state.
  const HALF_DONE: { name: string; crashAt: UpdateState; leave(): Promise<void> }[] = [
    {
      name: 'staging had moved the artifact into the slot, manifest not written yet',
      crashAt: 'verifying',
      leave: async () => {
        await mkdir(join(dir, 'models/m/b'), { recursive: true });
        await rename(join(dir, 'downloads', `${sha256Hex(V3)}.part`), join(dir, 'models/m/b/model.onnx'));
      },
    },
    {
      name: 'activation had switched the pointer, the record not yet active',
      crashAt: 'activating',
      leave: () =>
        writeFile(
          join(dir, 'models/m/active.json'),
          JSON.stringify({ slot: 'b', version: 3, sha256: sha256Hex(V3) }),
        ),
    },
  ];
  it.each(HALF_DONE)('$name: the restart finishes the job', async ({ crashAt, leave }) => {
    const { commandId } = await crashDuringV3(crashAt, true);
    await leave();
    const a = await restart();
    expect((await outcome(commandId)).state).toBe('active');
    await expectServes(a, 3, V3);
    await stopAgent();
    expect(await recordOf(commandId)).toMatchObject({ state: 'active', slot: 'b' });
    expect(JSON.parse(await readFile(join(dir, 'models/m/active.json'), 'utf8'))).toEqual({
      slot: 'b',
      version: 3,
      sha256: sha256Hex(V3),
    });
  });

  it('a crash loop in one state ends the update with crash_loop; the previous model keeps serving', async () => {
    const { commandId } = await crashDuringV3('loading', true);
    let announced: () => void = () => undefined;
    for (let restartNo = 1; restartNo <= 3; restartNo++) {
      const hung = new Promise<void>((resolve) => {
        announced = resolve;
      });
      const a = await restart({ hangAt: 'loading', announce: () => announced() });
      await within(hung, 30_000, `restart ${restartNo} to reach loading again (fault line)`);
      expect(await servedVersion(a)).toBe(2);
      await stopAgent();
    }
    expect((await recordOf(commandId))?.reentries).toEqual({ loading: 3 });

    // The fourth restart gives up on the update instead of entering `loading` again.
    let enteredAgain = false;
    const a = await restart({
      hangAt: 'loading',
      announce: () => {
        enteredAgain = true;
      },
    });
    expect(await outcome(commandId)).toMatchObject({
      state: 'failed',
      reason: { code: 'crash_loop' },
      serving: { name: 'm', version: 2 },
    });
    await expectServes(a, 2, V2);
    await stopAgent();
    expect(enteredAgain).toBe(false);
    expect(await recordOf(commandId)).toMatchObject({
      state: 'failed',
      reason: { code: 'crash_loop', message: expect.stringMatching(/4 times while loading/) },
    });
  });

  it('an active slot that no longer loads falls back to the other slot and points there', async () => {
    const d = await openDevice({ dataDir: dir, identity: identityFor(key) });
    await d.install(installCommand(await manifestFor(V2, 2, key), server.put(V2)));
    await d.install(installCommand(await manifestFor(V3, 3, key), server.put(V3)));
    expect(await d.slots.readActive('m')).toMatchObject({ slot: 'b', version: 3 });
    const slots = d.slots;
    await d.close();
    // Bad storage: the active model file is damaged after it was activated.
    await writeFile(slots.modelPath('m', 'b'), 'garbage');

    const a = await restart();
    await expectServes(a, 2, V2);
    expect(await slots.readActive('m')).toEqual({ slot: 'a', version: 2, sha256: sha256Hex(V2) });
  });

  it('a restart with nothing in flight serves the active slot and leaves finished records alone', async () => {
    const d = await openDevice({ dataDir: dir, identity: identityFor(key) });
    const command = installCommand(await manifestFor(V2, 2, key), server.put(V2));
    await d.install(command);
    await d.close();
    const requests = server.requests.length;

    const a = await restart();
    await expectServes(a, 2, V2);
    await stopAgent();
    expect(server.requests.length).toBe(requests);
    expect(await recordOf(command.id)).toMatchObject({ state: 'active', reentries: {} });
  });
});
