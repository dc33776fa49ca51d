/**
 * The local inference API in-process (`app.request`) over a real ONNX Runtime session: correct numbers,
 * OIP v2 metadata, and a 400 that says what was expected for each kind of bad request.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelHost } from '../../../../agent/runtime/host.js';
import { OrtRuntime } from '../../../../agent/runtime/ort.js';
import { createInferenceApi } from '../../../../agent/server/app.js';
import { InferenceStats } from '../../../../agent/telemetry/stats.js';
import { generateSigningKey } from '../../../../shared/crypto/signing.js';
import { MANIFEST_SCHEMA, type Manifest, signManifest } from '../../../../shared/manifest.js';
import { mulberry32, seededMlp } from '../../../../shared/onnx/mlp.js';
import { TEST_CPU_PROFILE } from '../../../support/profiles.js';

describe('inference API (Open Inference Protocol v2)', () => {
  const bytes = seededMlp({ seed: 11, sizes: [32, 64, 64, 2], softmax: true });
  const host = new ModelHost();
  const stats = new InferenceStats(64);
  const app = createInferenceApi({
    host,
    stats,
    log: pino({ level: 'silent' }),
    agentVersion: 'test',
    maxBatchRows: 64,
  });
  let reference: ort.InferenceSession;

  const post = (path: string, body: unknown) =>
    app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const sample = (rows: number) => {
    const rand = mulberry32(rows);
    return Array.from({ length: rows * 32 }, () => rand() * 2 - 1);
  };

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agent-api-'));
    await writeFile(join(dir, 'm.onnx'), bytes);
    const manifest: Manifest = signManifest(
      {
        schema: MANIFEST_SCHEMA,
        name: 'clf',
        version: 3,
        artifact: { sha256: 'ab'.repeat(32), size: bytes.length },
        inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 32] }],
        outputs: [{ name: 'output', dtype: 'float32', shape: ['batch', 2] }],
        opset: 13,
        createdAt: new Date().toISOString(),
        expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
        golden: {
          inputs: [{ name: 'input', dtype: 'float32', shape: [1, 32], data: sample(1) }],
          outputs: [{ name: 'output', dtype: 'float32', shape: [1, 2], data: [0, 0] }],
          tolerance: { abs: 1, rel: 0 },
        },
      },
      generateSigningKey(),
    );
    host.swap({
      name: 'clf',
      version: 3,
      slot: 'a',
      manifest,
      loaded: await new OrtRuntime().load(join(dir, 'm.onnx'), TEST_CPU_PROFILE),
    });
    reference = await ort.InferenceSession.create(bytes);
  });
  afterAll(async () => {
    for (const m of host.all()) await m.loaded.release();
    await reference?.release();
  });

  it('answers with what ONNX Runtime computes, flat or nested input data', async () => {
    const data = sample(4);
    const want = (await reference.run({ input: new ort.Tensor('float32', Float32Array.from(data), [4, 32]) }))
      .output!.data as Float32Array;
    const nested = Array.from({ length: 4 }, (_, r) => data.slice(r * 32, r * 32 + 32));
    for (const payload of [data, nested]) {
      const res = await post('/v2/models/clf/infer', {
        id: 'req-1',
        inputs: [{ name: 'input', shape: [4, 32], datatype: 'FP32', data: payload }],
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as any;
      expect(body).toMatchObject({ model_name: 'clf', model_version: '3', id: 'req-1' });
      expect(body.outputs[0]).toMatchObject({ name: 'output', shape: [4, 2], datatype: 'FP32' });
      for (let i = 0; i < want.length; i++)
        expect(Math.abs(body.outputs[0].data[i] - want[i]!)).toBeLessThanOrEqual(1e-6);
    }
  });

  it('serves health, readiness, metadata and metrics', async () => {
    expect((await app.request('/v2/health/live')).status).toBe(200);
    expect((await app.request('/v2/health/ready')).status).toBe(200);
    expect((await app.request('/v2/models/clf/ready')).status).toBe(200);
    expect((await app.request('/v2/models/nope/ready')).status).toBe(503);
    const meta = (await (await app.request('/v2/models/clf')).json()) as any;
    expect(meta).toMatchObject({
      name: 'clf',
      versions: ['3'],
      platform: 'onnxruntime',
      execution_provider: 'cpu',
    });
    expect(meta.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 32] }]);
    const metrics = await (await app.request('/metrics')).text();
    expect(metrics).toMatch(/edgefleet_inference_requests_total\{model="clf",outcome="ok"\} \d+/);
    expect(metrics).toMatch(/edgefleet_model_version\{model="clf",execution_provider="cpu"\} 3/);
  });

  const bad: { name: string; path?: string; body: unknown; status?: number; message: RegExp }[] = [
    {
      name: 'unknown model',
      path: '/v2/models/other/infer',
      body: { inputs: [] },
      status: 404,
      message: /model 'other' not found/,
    },
    {
      name: 'wrong version in the path',
      path: '/v2/models/clf/versions/2/infer',
      body: { inputs: [] },
      status: 404,
      message: /serving v3/,
    },
    { name: 'body not JSON', body: '{"inputs": [', message: /not JSON/ },
    {
      name: 'no inputs array',
      body: { data: [] },
      message: /needs an "inputs" array.*input FP32 \[batch, 32\]/,
    },
    {
      name: 'unknown input name',
      body: { inputs: [{ name: 'x', shape: [1, 32], datatype: 'FP32', data: sample(1) }] },
      message: /unknown input "x"; the model takes: input FP32 \[batch, 32\]/,
    },
    { name: 'missing input', body: { inputs: [] }, message: /missing input\(s\) input/ },
    {
      name: 'wrong datatype',
      body: { inputs: [{ name: 'input', shape: [1, 32], datatype: 'INT64', data: sample(1) }] },
      message: /must have datatype FP32, got "INT64"/,
    },
    {
      name: 'wrong rank',
      body: { inputs: [{ name: 'input', shape: [32], datatype: 'FP32', data: sample(1) }] },
      message: /expected rank 2 \[batch, 32\], got rank 1 \[32\]/,
    },
    {
      name: 'wrong feature count',
      body: { inputs: [{ name: 'input', shape: [1, 31], datatype: 'FP32', data: sample(1).slice(0, 31) }] },
      message: /dimension 1 must be 32, got 31/,
    },
    {
      name: 'data shorter than the shape',
      body: { inputs: [{ name: 'input', shape: [2, 32], datatype: 'FP32', data: sample(1) }] },
      message: /has 32 values, shape \[2, 32\] needs 64/,
    },
    {
      name: 'non-numeric value',
      body: {
        inputs: [{ name: 'input', shape: [1, 32], datatype: 'FP32', data: ['a', ...sample(1).slice(1)] }],
      },
      message: /data\[0\] is "a", not a number/,
    },
    {
      name: 'unknown requested output',
      body: {
        inputs: [{ name: 'input', shape: [1, 32], datatype: 'FP32', data: sample(1) }],
        outputs: [{ name: 'logits' }],
      },
      message: /outputs\[0\] names "logits"; the model's outputs are output/,
    },
  ];

  it.each(bad)('$name → a clear error', async ({ path, body, status, message }) => {
    const res = await post(path ?? '/v2/models/clf/infer', body);
    expect(res.status).toBe(status ?? 400);
    const json = (await res.json()) as any;
    expect(json.error.message).toMatch(message);
  });

  it('counts requests and errors per model for telemetry', async () => {
    stats.take('clf');
    await post('/v2/models/clf/infer', {
      inputs: [{ name: 'input', shape: [1, 32], datatype: 'FP32', data: sample(1) }],
    });
    await post('/v2/models/clf/infer', { inputs: [] });
    const window = stats.take('clf');
    expect(window.requests).toBe(2);
    expect(window.errors).toBe(1);
    expect(window.latencyMs.p99).toBeGreaterThan(0);
  });
});

describe('inference API during a model switch', () => {
  it('a request in flight when the model is switched completes on the old session, released after it', async () => {
    const bytes = seededMlp({ seed: 12, sizes: [32, 8, 2], softmax: true });
    const dir = await mkdtemp(join(tmpdir(), 'agent-api-switch-'));
    await writeFile(join(dir, 'm.onnx'), bytes);
    const runtime = new OrtRuntime();
    const manifest = (version: number): Manifest =>
      signManifest(
        {
          schema: MANIFEST_SCHEMA,
          name: 'm',
          version,
          artifact: { sha256: 'ab'.repeat(32), size: bytes.length },
          inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 32] }],
          outputs: [{ name: 'output', dtype: 'float32', shape: ['batch', 2] }],
          opset: 13,
          createdAt: new Date().toISOString(),
          expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
          golden: {
            inputs: [{ name: 'input', dtype: 'float32', shape: [1, 32], data: new Array(32).fill(0) }],
            outputs: [{ name: 'output', dtype: 'float32', shape: [1, 2], data: [0, 0] }],
            tolerance: { abs: 1, rel: 0 },
          },
        },
        generateSigningKey(),
      );
    const real = await runtime.load(join(dir, 'm.onnx'), TEST_CPU_PROFILE);
    // The old session's run waits at a gate, so the switch happens while the request is inside it.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const events: string[] = [];
    const old = {
      ...real,
      async run(feeds: Parameters<typeof real.run>[0]) {
        entered();
        await gate;
        const outputs = await real.run(feeds);
        events.push('old run done');
        return outputs;
      },
      async release() {
        events.push('old released');
        await real.release();
      },
    };
    const host = new ModelHost();
    host.swap({ name: 'm', version: 1, slot: 'a', manifest: manifest(1), loaded: old });
    const app = createInferenceApi({
      host,
      stats: new InferenceStats(64),
      log: pino({ level: 'silent' }),
      agentVersion: 'test',
      maxBatchRows: 1,
    });
    const body = JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 32], datatype: 'FP32', data: new Array(32).fill(0.5) }],
    });
    const pending = app.request('/v2/models/m/infer', { method: 'POST', body });
    await inside;
    const next = await runtime.load(join(dir, 'm.onnx'), TEST_CPU_PROFILE);
    host.retire(host.swap({ name: 'm', version: 2, slot: 'b', manifest: manifest(2), loaded: next })!);
    expect(events).toEqual([]); // not released under the request
    open();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model_version: string }).model_version).toBe('1');
    expect(events).toEqual(['old run done', 'old released']);
    await next.release();
  });
});
