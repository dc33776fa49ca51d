/**
 * The wire contract, checked against the API in-process (`app.request`) over a real LevelDB: a walk through
 * the main routes — tokens, enrollment, devices, a model version and its lineage, aliases, a task with an
 * import and a snapshot, a training run, a rollout and an action on it, drift, retrain policy, the audit log,
 * the overview and the device's console reads — where every answer must be exactly what its shared/api
 * schema declares: parsing fails on a missing or mistyped field, and a field the schema does not declare
 * (a stored record leaking onto the wire) is stripped by the parse, so the parsed value differs from the body.
 * Refusals must parse as the error body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { createApi } from '../../../../fleet-server/api/app.js';
import { AuditListSchema, PrincipalSchema, VerifyResultSchema } from '../../../../shared/api/audit.js';
import {
  DeviceTelemetrySchema,
  DeviceUpdatesSchema,
  HealthSchema,
  OverviewSchema,
} from '../../../../shared/api/console.js';
import {
  DeviceListSchema,
  DeviceSchema,
  EnrollmentTokenSchema,
  OperatorTokenSchema,
} from '../../../../shared/api/devices.js';
import {
  DeviceDriftSchema,
  DriftOverviewSchema,
  DriftTimelineSchema,
  RetrainListSchema,
  StoredPolicySchema,
} from '../../../../shared/api/drift.js';
import { EnrollResponseSchema } from '../../../../shared/api/enroll.js';
import { ErrorBodySchema } from '../../../../shared/api/errors.js';
import {
  AliasesSchema,
  LineageSchema,
  ModelListSchema,
  ModelVersionListSchema,
  ModelVersionWithAliasesSchema,
  SetAliasResponseSchema,
} from '../../../../shared/api/models.js';
import {
  ImportResultSchema,
  RejectionsSchema,
  SnapshotListSchema,
  SnapshotSchema,
  TaskListSchema,
  TaskWithStatsSchema,
  TrainingRunListSchema,
  TrainingRunSchema,
} from '../../../../shared/api/pool.js';
import { RolloutListSchema, RolloutSchema } from '../../../../shared/api/rollouts.js';
import type { DriftMessage } from '../../../../shared/protocol/messages.js';
import { mlp } from '../../../support/models.js';
import { openTempStore, type TempStore } from '../temp-store.js';
import { openApi } from '../wiring.js';

/** The body is exactly what the schema declares: no field missing or mistyped, none undeclared. */
function expectWire(schema: z.ZodType, body: unknown): void {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new Error(`the answer does not match its schema: ${parsed.error.message}`);
  expect(parsed.data, 'fields the schema does not declare').toEqual(body);
}

describe('wire contract (shared/api) against the API', () => {
  let store: TempStore;
  let api: Awaited<ReturnType<typeof openApi>>;
  let app: ReturnType<typeof createApi>;
  const clock = new Date('2026-11-01T00:00:00Z');

  beforeAll(async () => {
    store = await openTempStore('fleet-contract-');
    api = await openApi(store, { now: () => clock });
    app = api.app;
  });
  afterAll(() => store?.close());

  const call = async (method: string, path: string, body?: unknown, contentType?: string) => {
    const headers: Record<string, string> = { authorization: `Bearer ${api.admin}` };
    let payload: RequestInit['body'];
    if (body instanceof Uint8Array || typeof body === 'string') {
      payload = body as RequestInit['body'];
      headers['content-type'] = contentType ?? 'application/octet-stream';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const res = await app.request(path, { method, headers, body: payload });
    return { status: res.status, json: (await res.json()) as any };
  };

  /** Call, check the status, check the body against the schema, and hand the body on. */
  const wire = async (
    schema: z.ZodType,
    method: string,
    path: string,
    status: number,
    body?: unknown,
    contentType?: string,
  ) => {
    const res = await call(method, path, body, contentType);
    expect(res.status, `${method} ${path}: ${JSON.stringify(res.json)}`).toBe(status);
    expectWire(schema, res.json);
    return res.json;
  };

  it('every main route answers with exactly its declared shape', async () => {
    await wire(HealthSchema, 'GET', '/api/v1/health', 200);
    await wire(PrincipalSchema, 'GET', '/api/v1/whoami', 200);
    await wire(OperatorTokenSchema, 'POST', '/api/v1/tokens', 201, { role: 'viewer', name: 'v' });

    const token = await wire(EnrollmentTokenSchema, 'POST', '/api/v1/enrollment-tokens', 201, {
      tags: { line: '1' },
    });
    const enrolled = await app.request('/api/v1/enroll', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: token.token, facts: { hostname: 'h1' } }),
    });
    expect(enrolled.status).toBe(201);
    const enrollment = (await enrolled.json()) as { deviceId: string };
    expectWire(EnrollResponseSchema, enrollment);
    const deviceId: string = enrollment.deviceId;
    await wire(DeviceListSchema, 'GET', '/api/v1/devices', 200);
    await wire(DeviceListSchema, 'GET', '/api/v1/devices?limit=1', 200);
    await wire(DeviceSchema, 'GET', `/api/v1/devices/${deviceId}`, 200);

    await wire(ModelVersionWithAliasesSchema, 'POST', '/api/v1/models/clf/versions', 201, mlp(3));
    await wire(ModelListSchema, 'GET', '/api/v1/models', 200);
    await wire(ModelVersionListSchema, 'GET', '/api/v1/models/clf/versions', 200);
    await wire(SetAliasResponseSchema, 'PUT', '/api/v1/models/clf/aliases/candidate', 200, { version: 1 });
    await wire(ModelVersionWithAliasesSchema, 'GET', '/api/v1/models/clf/versions/candidate', 200);
    await wire(AliasesSchema, 'GET', '/api/v1/models/clf/aliases', 200);

    // Training needs at least 10 labeled samples.
    const rows = Array.from({ length: 12 }, (_, i) => `${i},${i * 2},${i % 2 ? 'x' : 'y'}`);
    const csv = `a,b,label\n${rows.join('\n')}\n`;
    await wire(ImportResultSchema, 'POST', '/api/v1/tasks/sensors/import?source=s.csv', 201, csv, 'text/csv');
    await wire(TaskListSchema, 'GET', '/api/v1/tasks', 200);
    await wire(TaskWithStatsSchema, 'GET', '/api/v1/tasks/sensors', 200);
    const snapshot = await wire(SnapshotSchema, 'POST', '/api/v1/tasks/sensors/snapshots', 201);
    await wire(SnapshotListSchema, 'GET', '/api/v1/tasks/sensors/snapshots', 200);
    await wire(SnapshotSchema, 'GET', `/api/v1/snapshots/${snapshot.id}`, 200);
    await wire(RejectionsSchema, 'GET', '/api/v1/pool/rejections', 200);
    const run = await wire(TrainingRunSchema, 'POST', '/api/v1/tasks/sensors/train', 202, {
      snapshot: snapshot.id,
    });
    await wire(TrainingRunSchema, 'GET', `/api/v1/training-runs/${run.id}`, 200);
    await wire(TrainingRunListSchema, 'GET', '/api/v1/training-runs', 200);

    const rollout = await wire(RolloutSchema, 'POST', '/api/v1/rollouts', 201, {
      model: { name: 'clf', version: 'candidate' },
      targets: { tags: { line: '1' } },
      strategy: 'canary',
      steps: [50, 100],
    });
    expect(rollout.devices.length).toBeGreaterThan(0);
    await wire(RolloutSchema, 'POST', `/api/v1/rollouts/${rollout.id}/pause`, 200, { reason: 'look' });
    await wire(RolloutSchema, 'GET', `/api/v1/rollouts/${rollout.id}`, 200);
    await wire(RolloutListSchema, 'GET', '/api/v1/rollouts', 200);
    await wire(LineageSchema, 'GET', '/api/v1/models/clf/versions/1/lineage', 200);
    await wire(DeviceUpdatesSchema, 'GET', `/api/v1/devices/${deviceId}/updates`, 200);
    await wire(DeviceTelemetrySchema, 'GET', `/api/v1/devices/${deviceId}/telemetry`, 200);

    await api.drift.record(deviceId, driftReport());
    await wire(DriftOverviewSchema, 'GET', '/api/v1/drift?cohort=profile', 200);
    await wire(DeviceDriftSchema, 'GET', `/api/v1/drift/clf/devices/${deviceId}`, 200);
    await wire(DriftTimelineSchema, 'GET', '/api/v1/drift/clf/versions/1/timeline', 200);
    await wire(StoredPolicySchema, 'PUT', '/api/v1/tasks/sensors/retrain-policy', 200, { deviceShare: 0.4 });
    await wire(StoredPolicySchema, 'GET', '/api/v1/tasks/sensors/retrain-policy', 200);
    await wire(RetrainListSchema, 'GET', '/api/v1/retrains', 200);

    await wire(AuditListSchema, 'GET', '/api/v1/audit', 200);
    await wire(VerifyResultSchema, 'GET', '/api/v1/audit/verify', 200);
    const overview = await wire(OverviewSchema, 'GET', '/api/v1/overview', 200);
    expect(overview.rollouts.active.map((r: { id: string }) => r.id)).toContain(rollout.id);
  });

  it('refusals answer with the error body', async () => {
    for (const [method, path, body] of [
      ['GET', '/api/v1/rollouts/nope', undefined],
      ['POST', '/api/v1/rollouts', { model: { name: 'clf', version: 1 } }],
      ['GET', '/api/v1/no-such-route', undefined],
      ['GET', '/api/v1/devices?limit=0', undefined],
    ] as const) {
      const res = await call(method, path, body);
      expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      expectWire(ErrorBodySchema, res.json);
    }
  });
});

function driftReport(): DriftMessage {
  return {
    v: 1,
    type: 'drift',
    id: crypto.randomUUID(),
    ts: 0,
    model: { name: 'clf', version: 1 },
    cause: 'verdict_change',
    verdict: 'drift',
    verdictSince: 0,
    window: { startedAt: 0, endedAt: 1000, samples: 200, closedBy: 'count' },
    driftedShare: 0.5,
    features: [
      {
        name: 'a',
        ksStatistic: 0.4,
        pValue: 0.001,
        adjustedPValue: 0.002,
        psi: 0.3,
        jensenShannon: 0.1,
        drifted: true,
      },
    ],
    prediction: null,
    concept: { labeled: 0, meanLoss: null, drifted: false, detections: { pageHinkley: 0, adwin: 0 } },
    dropped: 0,
    captureRate: 0.1,
  };
}
