/**
 * The local inference API answers errors from the map the fleet's API uses (shared/errors.ts): a domain error
 * with its family's status and `{ error: { code, message } }`, anything else as 500 `internal` whose body says
 * nothing of it (the log does). In-process (`app.request`) over a real ONNX Runtime session; the faults are
 * injected into that session's `run`.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelHost } from '../../../../agent/runtime/host.js';
import type { LoadedModel } from '../../../../agent/runtime/ort.js';
import { OrtRuntime } from '../../../../agent/runtime/ort.js';
import { createInferenceApi } from '../../../../agent/server/app.js';
import { InferenceStats } from '../../../../agent/telemetry/stats.js';
import { generateSigningKey } from '../../../../shared/crypto/signing.js';
import { ConflictError, EdgefleetError } from '../../../../shared/errors.js';
import { MANIFEST_SCHEMA, type Manifest, signManifest } from '../../../../shared/manifest.js';
import { seededMlp } from '../../../../shared/onnx/mlp.js';
import { TEST_CPU_PROFILE } from '../../../support/profiles.js';

describe('inference API errors', () => {
  const host = new ModelHost();
  const logged: { msg: string; err?: { message?: string } }[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line)) });
  const app = createInferenceApi({
    host,
    stats: new InferenceStats(64),
    log,
    agentVersion: 'test',
    maxBatchRows: 1,
  });
  /** What the session's next run throws (undefined: it runs the real model). */
  let fault: unknown;
  let real: LoadedModel;

  beforeAll(async () => {
    const bytes = seededMlp({ seed: 21, sizes: [4, 8, 2], softmax: true });
    const dir = await mkdtemp(join(tmpdir(), 'agent-api-errors-'));
    await writeFile(join(dir, 'm.onnx'), bytes);
    const manifest: Manifest = signManifest(
      {
        schema: MANIFEST_SCHEMA,
        name: 'clf',
        version: 1,
        artifact: { sha256: 'ab'.repeat(32), size: bytes.length },
        inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 4] }],
        outputs: [{ name: 'output', dtype: 'float32', shape: ['batch', 2] }],
        opset: 13,
        createdAt: new Date().toISOString(),
        expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
        golden: {
          inputs: [{ name: 'input', dtype: 'float32', shape: [1, 4], data: [0, 0, 0, 0] }],
          outputs: [{ name: 'output', dtype: 'float32', shape: [1, 2], data: [0, 0] }],
          tolerance: { abs: 1, rel: 0 },
        },
      },
      generateSigningKey(),
    );
    real = await new OrtRuntime().load(join(dir, 'm.onnx'), TEST_CPU_PROFILE);
    const faulty: LoadedModel = {
      ...real,
      async run(feeds) {
        if (fault !== undefined) throw fault;
        return real.run(feeds);
      },
    };
    host.swap({ name: 'clf', version: 1, slot: 'a', manifest, loaded: faulty });
  });
  afterAll(async () => {
    await real?.release();
  });

  const infer = (body: unknown, name = 'clf') =>
    app.request(`/v2/models/${name}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const row = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4] }] };

  /** Answer one request with `injected` thrown by the session (none: the request decides), and the log lines. */
  const answer = async (body: unknown, injected?: unknown, name?: string) => {
    fault = injected;
    logged.length = 0;
    try {
      const res = await infer(body, name);
      return { status: res.status, json: (await res.json()) as { error: { code: string; message: string } } };
    } finally {
      fault = undefined;
    }
  };

  it('the premise: without a fault the model answers', async () => {
    expect((await answer(row)).status).toBe(200);
  });

  it('an unknown model is 404 not_found, naming it', async () => {
    const { status, json } = await answer(row, undefined, 'other');
    expect(status).toBe(404);
    expect(json.error).toEqual({ code: 'not_found', message: "model 'other' not found" });
    expect(logged).toEqual([]);
  });

  it('bad input is 400 with the code the validator gave and what was expected', async () => {
    const { status, json } = await answer({ inputs: [] });
    expect(status).toBe(400);
    expect(json.error.code).toBe('invalid_request');
    expect(json.error.message).toMatch(/missing input\(s\) input/);
    expect(logged).toEqual([]);
  });

  it('a conflict is 409 with its code and message', async () => {
    const { status, json } = await answer(
      row,
      new ConflictError('the session is being replaced', 'switching'),
    );
    expect(status).toBe(409);
    expect(json.error).toEqual({ code: 'switching', message: 'the session is being replaced' });
    expect(logged).toEqual([]);
  });

  it('a domain error of no client-error family is 500 with its code, a generic message, and logged', async () => {
    const err = new EdgefleetError('ort_failed', 'kernel Gemm failed at /opt/ort/libonnxruntime.so');
    const { status, json } = await answer(row, err);
    expect(status).toBe(500);
    expect(json.error.code).toBe('ort_failed');
    expect(JSON.stringify(json)).not.toContain('libonnxruntime');
    expect(logged.map((l) => l.err?.message)).toEqual([err.message]);
  });

  it('an unexpected error is 500 internal without its message in the body; the log has it', async () => {
    const err = new TypeError(
      "Cannot read properties of undefined (reading 'dims') at /srv/agent/batcher.js",
    );
    const { status, json } = await answer(row, err);
    expect(status).toBe(500);
    expect(json.error.code).toBe('internal');
    expect(JSON.stringify(json)).not.toContain('/srv/agent');
    expect(logged.map((l) => l.err?.message)).toEqual([err.message]);
  });
});
