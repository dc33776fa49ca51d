/**
 * The console's reads in-process (`app.request`) over a real LevelDB, with devices, rollouts, drift reports,
 * training runs and audit entries seeded in their collections: who the token is, the overview's counts, one
 * device's telemetry (quantiles of merged histograms) and update history, the device list's profile and
 * model filters across pages, and 400s / 404s that say what is wrong. Also the hooks that feed live updates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { createApi } from '../../../../fleet-server/api/app.js';
import { type Change, ChangeFeed } from '../../../../fleet-server/api/changes.js';
import type { DeviceRecord, DeviceRegistry } from '../../../../fleet-server/devices/registry.js';
import type { DeviceDrift } from '../../../../fleet-server/drift/reports.js';
import {
  newRollout,
  type RolloutDevice,
  type RolloutPhase,
  type RolloutRecord,
} from '../../../../fleet-server/rollouts/record.js';
import { presetSpec } from '../../../../fleet-server/rollouts/spec.js';
import type { Collection } from '../../../../fleet-server/store/db.js';
import type { TelemetryWindow, TelemetryWindows } from '../../../../fleet-server/telemetry/windows.js';
import type { TrainingRunRecord, TrainingRuns } from '../../../../fleet-server/training/runs.js';
import { bucketOf, emptyBuckets } from '../../../../shared/histogram.js';
import type { TelemetryMessage } from '../../../../shared/protocol/messages.js';
import { manualClock, openTempStore, type TempStore } from '../temp-store.js';
import { openApi } from '../wiring.js';

const N = 600;
const id = (i: number) => `dev-${String(i).padStart(5, '0')}`;

/**
 * Device i: online when i%3=0, offline when 1, never seen when 2 (200 each); x86_64-cpu when even,
 * raspberry-pi-5 when odd (300 each). Seen devices run clf@2 when i%4=0 (100 devices), else clf@1 (300), and
 * det@1 too when i%10=0 (40).
 */
function device(i: number): DeviceRecord {
  const seen = i % 3 !== 2;
  const models = !seen
    ? []
    : [
        { name: 'clf', version: i % 4 === 0 ? 2 : 1, executionProvider: 'cpu' },
        ...(i % 10 === 0 ? [{ name: 'det', version: 1, executionProvider: 'cpu' }] : []),
      ];
  return {
    id: id(i),
    tags: { line: String(i % 5) },
    profile: i % 2 === 0 ? 'x86_64-cpu' : 'raspberry-pi-5',
    facts: {} as DeviceRecord['facts'],
    enrolledAt: '2026-11-01T00:00:00.000Z',
    secret: {} as DeviceRecord['secret'],
    online: i % 3 === 0,
    lastSeen: seen ? '2026-11-01T00:00:00.000Z' : null,
    agentVersion: null,
    models,
    telemetry: null,
  };
}

function buckets(values: number[]): number[] {
  const b = emptyBuckets();
  for (const v of values) b[bucketOf(v)]!++;
  return b;
}

function telemetry(
  models: { name: string; requests: number; errors: number; latencies?: number[] }[],
): TelemetryMessage {
  return {
    v: 1,
    type: 'telemetry',
    id: crypto.randomUUID(),
    ts: 0,
    windowMs: 5000,
    models: models.map((m) => ({
      name: m.name,
      version: 1,
      executionProvider: 'cpu',
      requests: m.requests,
      errors: m.errors,
      latencyMs: { p50: 0, p95: 0, p99: 0 },
      ...(m.latencies ? { latencyBuckets: buckets(m.latencies) } : {}),
    })),
    process: { rssBytes: 50e6, heapUsedBytes: 20e6, cpuPercent: 12.5, uptimeS: 60 },
    device: { loadAvg1: 0.7, freeMemBytes: 1e9, totalMemBytes: 4e9 },
  };
}

describe('console API', () => {
  let store: TempStore;
  // Near the real time: the telemetry route's default window is the last hour of the wall clock.
  const clock = manualClock(new Date(Date.now() - 2 * 3600_000).toISOString());
  let app: ReturnType<typeof createApi>;
  let admin: string;
  let viewer: string;
  let devices: DeviceRegistry;
  let training: TrainingRuns;
  let telemetryWindows: TelemetryWindows;
  const changes = new ChangeFeed();
  const changedDevices: string[] = [];

  beforeAll(async () => {
    store = await openTempStore('fleet-console-');
    const { db } = store;
    await db
      .collection<DeviceRecord>('devices')
      .putMany(Array.from({ length: N }, (_, i) => [id(i), device(i)]));
    const wired = await openApi(store, {
      now: clock.now,
      changes,
      onDeviceChanged: (d) => {
        changedDevices.push(d.id);
        changes.publish('device', d.id);
      },
      onTrainingSaved: (run) => changes.publish('training-run', run.id),
    });
    ({ app, admin, devices, training, telemetry: telemetryWindows } = wired);
    viewer = (await wired.tokens.create('viewer', 'wall-screen')).token;

    await seedRollouts(db.collection<RolloutRecord>('rollouts'));
    // Latest drift reports: clf@2 has 3 drifting of 5 with a verdict (one more without); clf@1 none
    // drifting; det@1 one of one.
    const reports: [string, number, DeviceDrift['verdict']][] = [
      ...(['drift', 'drift', 'drift', 'no_drift', 'no_drift', 'insufficient_data'] as const).map(
        (v): [string, number, DeviceDrift['verdict']] => ['clf', 2, v],
      ),
      ...Array.from({ length: 4 }, (): [string, number, DeviceDrift['verdict']] => ['clf', 1, 'no_drift']),
      ['det', 1, 'drift'],
    ];
    await db
      .collection<Partial<DeviceDrift>>('drift-latest')
      .putMany(
        reports.map(([model, version, verdict], i) => [
          `${model}/${id(i)}`,
          { deviceId: id(i), model, version, verdict, receivedAt: 0 },
        ]),
      );
    await db
      .collection<Partial<TrainingRunRecord>>('training-runs')
      .putMany(
        (['succeeded', 'running', 'queued'] as const).map((status, i) => [
          `run-00${i}`,
          { id: `run-00${i}`, status },
        ]),
      );
    for (let i = 1; i <= 20; i++)
      await wired.audit.append({
        actor: 'alice',
        action: `POST /api/v1/thing/${i}`,
        target: `thing/${i}`,
        status: 201,
      });
  });
  afterAll(() => store?.close());

  /** Rollouts on dev-00000..09: two live, six finished (finished at hour 1..6), newest created last. */
  async function seedRollouts(collection: Collection<RolloutRecord>) {
    const phases: RolloutPhase[] = [
      'succeeded',
      'failed',
      'rolled_back',
      'succeeded',
      'succeeded',
      'succeeded',
      'paused',
      'progressing',
    ];
    for (const [i, phase] of phases.entries()) {
      const base = newRollout({
        id: `ro-00000000${i}-test`,
        model: { name: i % 2 === 0 ? 'clf' : 'det', version: i + 1 },
        targets: { devices: [] },
        spec: presetSpec('canary', { steps: [50, 100], shadowFirst: false }),
        deviceIds: Array.from({ length: 10 }, (_, d) => id(d)),
        cohortKey: (d) => Number(d.slice(4)),
        actor: 'alice',
        now: new Date(Date.UTC(2026, 10, 1, 0, i)),
      });
      const mine: Partial<RolloutDevice> =
        phase === 'failed'
          ? {
              state: 'failed',
              mode: 'activate',
              reason: { code: 'verify_failed', message: 'bad signature' },
              updatedAt: `2026-11-01T0${i}:30:00.000Z`,
            }
          : phase === 'progressing'
            ? { state: 'pending', mode: 'shadow', updatedAt: `2026-11-01T0${i}:30:00.000Z` }
            : { state: 'active', mode: 'activate', executionProvider: 'cpu' };
      await collection.put(base.id, {
        ...base,
        status: {
          ...base.status,
          phase,
          step: 1,
          // Finished out of creation order: the most recently finished come first in `recent`.
          updatedAt: `2026-11-01T0${phases.length - i}:00:00.000Z`,
        },
        devices: base.devices.map((d) => (d.deviceId === id(0) ? { ...d, ...mine } : d)),
      });
    }
  }

  const get = async (path: string, token: string | null = viewer) => {
    const res = await app.request(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, json: (await res.json()) as any };
  };
  const ids = (json: { devices: { id: string }[] }) => json.devices.map((d) => d.id);

  it('whoami names the token and its role; without a token it is 401', async () => {
    expect((await get('/api/v1/whoami')).json).toEqual({ name: 'wall-screen', role: 'viewer' });
    expect((await get('/api/v1/whoami', admin)).json).toEqual({ name: 'bootstrap-admin', role: 'admin' });
    const anonymous = await get('/api/v1/whoami', null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.json.error.code).toBe('unauthenticated');
  });

  it('the overview counts devices, profiles, versions, rollouts, drift, training and recent events', async () => {
    const { status, json } = await get('/api/v1/overview');
    expect(status).toBe(200);
    expect(json.devices).toEqual({ total: 600, online: 200, offline: 200, neverSeen: 200 });
    expect(json.profiles).toEqual([
      { profile: 'raspberry-pi-5', devices: 300 },
      { profile: 'x86_64-cpu', devices: 300 },
      { profile: 'jetson-orin', devices: 0 },
      { profile: 'x86_64-cuda', devices: 0 },
    ]);
    expect(json.versions).toEqual([
      { model: 'clf', version: 2, devices: 100 },
      { model: 'clf', version: 1, devices: 300 },
      { model: 'det', version: 1, devices: 40 },
    ]);
    expect(json.rollouts.active).toEqual([
      {
        id: 'ro-000000007-test',
        model: { name: 'det', version: 8 },
        phase: 'progressing',
        step: 1,
        steps: 3,
        createdAt: '2026-11-01T00:07:00.000Z',
      },
      expect.objectContaining({ id: 'ro-000000006-test', phase: 'paused' }),
    ]);
    // Six finished: the five that finished last, latest first (rollout 0 finished at 08:00, 5 at 03:00).
    expect(json.rollouts.recent.map((r: { id: string }) => r.id)).toEqual(
      [0, 1, 2, 3, 4].map((i) => `ro-00000000${i}-test`),
    );
    expect(json.drift).toEqual({
      alerts: [
        { model: 'clf', version: 2, devicesDrifted: 3, devicesReporting: 5 },
        { model: 'det', version: 1, devicesDrifted: 1, devicesReporting: 1 },
      ],
    });
    expect(json.training).toEqual({ running: 1 });
    expect(json.events).toHaveLength(15);
    expect(json.events[0]).toEqual({
      seq: 20,
      at: expect.any(String),
      actor: 'alice',
      action: 'POST /api/v1/thing/20',
      target: 'thing/20',
      status: 201,
    });
    expect(json.events.map((e: { seq: number }) => e.seq)).toEqual(
      Array.from({ length: 15 }, (_, i) => 20 - i),
    );
  });

  describe('device telemetry', () => {
    let at: number[];

    beforeAll(async () => {
      at = [];
      // Two hours ago: outside the default hour.
      at.push(clock.now().getTime());
      await telemetryWindows.record(id(0), telemetry([{ name: 'clf', requests: 5, errors: 0 }]));
      // Half an hour ago: two models whose histograms merge (p50 from clf, p99 from det).
      clock.advance(90 * 60_000);
      at.push(clock.now().getTime());
      await telemetryWindows.record(
        id(0),
        telemetry([
          { name: 'clf', requests: 40, errors: 1, latencies: [1, 1, 1, 1, 1] },
          { name: 'det', requests: 60, errors: 2, latencies: [3, 3, 3, 3, 100] },
        ]),
      );
      // A window stored before process and device figures were kept, without histograms.
      clock.advance(5000);
      at.push(clock.now().getTime());
      const legacy: TelemetryWindow = {
        receivedAt: at[2]!,
        windowMs: 10_000,
        models: [{ name: 'clf', version: 1, requests: 7, errors: 0, latencyBuckets: null }],
        shadow: [],
      };
      await store.db
        .collection<TelemetryWindow>('telemetry-windows')
        .put(`${id(0)}/${String(at[2]).padStart(13, '0')}/legacy`, legacy);
    });

    it('answers the last hour by default, oldest first, with merged quantiles and resource figures', async () => {
      const { status, json } = await get(`/api/v1/devices/${id(0)}/telemetry`);
      expect(status).toBe(200);
      expect(json.windows).toEqual([
        {
          at: new Date(at[1]!).toISOString(),
          windowMs: 5000,
          requests: 100,
          errors: 3,
          // Merged: 1,1,1,1,1,3,3,3,3,100 — the 5th value is 1 ms, the 10th is in the ≤100 ms bucket.
          p50Ms: 1,
          p99Ms: 100,
          rps: 20,
          cpuPercent: 12.5,
          rssBytes: 50e6,
          heapUsedBytes: 20e6,
          loadAvg1: 0.7,
          freeMemBytes: 1e9,
          totalMemBytes: 4e9,
        },
        {
          at: new Date(at[2]!).toISOString(),
          windowMs: 10_000,
          requests: 7,
          errors: 0,
          p50Ms: null,
          p99Ms: null,
          rps: 0.7,
          cpuPercent: null,
          rssBytes: null,
          heapUsedBytes: null,
          loadAvg1: null,
          freeMemBytes: null,
          totalMemBytes: null,
        },
      ]);
    });

    it('answers from sinceMs when given', async () => {
      const { json } = await get(`/api/v1/devices/${id(0)}/telemetry?sinceMs=${at[0]}`);
      expect(json.windows.map((w: { at: string }) => Date.parse(w.at))).toEqual(at);
      expect(json.windows[0]).toMatchObject({ requests: 5, p50Ms: null, cpuPercent: 12.5 });
      const none = await get(`/api/v1/devices/${id(0)}/telemetry?sinceMs=${at[2]! + 1}`);
      expect(none.json).toEqual({ windows: [] });
    });

    it.each(['soon', '-1', '1.5'])('sinceMs=%s is a 400 naming sinceMs', async (value) => {
      const { status, json } = await get(`/api/v1/devices/${id(0)}/telemetry?sinceMs=${value}`);
      expect(status).toBe(400);
      expect(json.error).toMatchObject({
        code: 'invalid_input',
        message: expect.stringContaining('sinceMs'),
      });
    });
  });

  it('lists every rollout that targets a device, newest first, with its state and reason there', async () => {
    const { status, json } = await get(`/api/v1/devices/${id(0)}/updates`);
    expect(status).toBe(200);
    expect(json.updates.map((u: { rolloutId: string }) => u.rolloutId)).toEqual(
      [7, 6, 5, 4, 3, 2, 1, 0].map((i) => `ro-00000000${i}-test`),
    );
    expect(json.updates[0]).toEqual({
      rolloutId: 'ro-000000007-test',
      model: { name: 'det', version: 8 },
      phase: 'progressing',
      state: 'pending',
      mode: 'shadow',
      reason: null,
      executionProvider: null,
      updatedAt: '2026-11-01T07:30:00.000Z',
    });
    expect(json.updates[6]).toMatchObject({
      phase: 'failed',
      state: 'failed',
      reason: { code: 'verify_failed', message: 'bad signature' },
    });
    expect(json.updates[7]).toMatchObject({ phase: 'succeeded', state: 'active', executionProvider: 'cpu' });
    expect((await get(`/api/v1/devices/${id(42)}/updates`)).json).toEqual({ updates: [] });
  });

  it.each(['telemetry', 'updates'])('%s of an unknown device is a JSON 404', async (what) => {
    const { status, json } = await get(`/api/v1/devices/dev-ghost/${what}`);
    expect(status).toBe(404);
    expect(json.error).toEqual({ code: 'not_found', message: "device 'dev-ghost' not found" });
  });

  describe('device list filters', () => {
    /** Every page of a filtered listing, following `next`. */
    const walk = async (query: string, limit: number) => {
      const pages: string[][] = [];
      let after = '';
      for (;;) {
        const { status, json } = await get(`/api/v1/devices?${query}&limit=${limit}${after}`);
        expect(status).toBe(200);
        pages.push(ids(json));
        if (json.next === null) return pages;
        expect(json.next).toBe(ids(json).at(-1));
        after = `&after=${json.next}`;
      }
    };
    const expected = (test: (i: number) => boolean) =>
      Array.from({ length: N }, (_, i) => i)
        .filter(test)
        .map(id);

    it('profile and model@version together, page by page in id order', async () => {
      const pages = await walk('profile=x86_64-cpu&model=clf@2', 30);
      expect(pages.map((p) => p.length)).toEqual([30, 30, 30, 10]);
      expect(pages.flat()).toEqual(expected((i) => i % 2 === 0 && i % 3 !== 2 && i % 4 === 0));
    });

    it('a model of any version, combined with status, tag and search', async () => {
      expect((await walk('model=det', 1000)).flat()).toEqual(expected((i) => i % 3 !== 2 && i % 10 === 0));
      expect((await walk('model=det&status=online&tag=line=0', 7)).flat()).toEqual(
        expected((i) => i % 3 === 0 && i % 10 === 0),
      );
      expect((await walk('model=clf@1&profile=raspberry-pi-5&q=dev-001', 1000)).flat()).toEqual(
        expected((i) => i >= 100 && i < 200 && i % 2 === 1 && i % 3 !== 2 && i % 4 !== 0),
      );
      expect((await walk('model=clf@3', 50)).flat()).toEqual([]);
    });

    it('without paging parameters the filters apply to the whole list', async () => {
      const { json } = await get('/api/v1/devices?profile=raspberry-pi-5&model=clf');
      expect(json.next).toBeUndefined();
      expect(ids(json)).toEqual(expected((i) => i % 2 === 1 && i % 3 !== 2));
    });

    it.each([
      ['model=Clf', "invalid model name 'Clf'"],
      ['model=clf@0', "model filter 'clf@0' must be <name> or <name>@<version>"],
      ['model=clf@two', "model filter 'clf@two' must be <name> or <name>@<version>"],
      ['model=clf@', "model filter 'clf@' must be <name> or <name>@<version>"],
      ['model=@2', "invalid model name ''"],
      ['model=clf&limit=5&profile=', 'profile'],
    ])('%s is a 400 that says why', async (query, message) => {
      const { status, json } = await get(`/api/v1/devices?${query}`);
      expect(status).toBe(400);
      expect(json.error.message).toContain(message);
    });
  });

  describe('live update hooks', () => {
    const seen: Change[] = [];
    let unsubscribe: () => void;
    beforeAll(() => {
      unsubscribe = changes.subscribe((c) => seen.push(c));
    });
    afterAll(() => unsubscribe());

    it('a device is told when its status or models change, not when a status repeats', async () => {
      const status = (online: boolean, version: number) => ({
        v: 1 as const,
        type: 'status' as const,
        id: crypto.randomUUID(),
        ts: 0,
        online,
        models: [{ name: 'clf', version, executionProvider: 'cpu' }],
      });
      changedDevices.length = 0;
      await devices.applyStatus(id(12), status(true, 2)); // already online, same models
      await devices.applyStatus(id(1), status(true, 1)); // offline → online
      await devices.applyStatus(id(6), status(true, 3)); // clf@1 → clf@3
      await devices.applyStatus(id(9), status(false, 9)); // online → offline (the will keeps the models)
      expect(changedDevices).toEqual([id(1), id(6), id(9)]);
      expect(seen).toEqual([id(1), id(6), id(9)].map((d) => ({ kind: 'device', id: d })));
    });

    it('a training run is told on every write', async () => {
      seen.length = 0;
      expect(await training.recover()).toBe(2); // the running and the queued run: marked interrupted
      expect(seen).toEqual([
        { kind: 'training-run', id: 'run-001' },
        { kind: 'training-run', id: 'run-002' },
      ]);
    });
  });
});
