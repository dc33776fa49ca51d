/**
 * The local inference API, Open Inference Protocol v2 (KServe/Triton REST), for applications on the device.
 * Reads the serving models from `ModelHost` on every request, so an activation takes effect atomically.
 * The infer path is hot: validation is precompiled per model version and logging stays off it.
 */
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import { httpErrorOf, NotFoundError, ValidationError } from '../../shared/errors.js';
import { DRIFT_VERDICTS } from '../../shared/protocol/messages.js';
import { OIP_DATATYPE, toJsonNumbers } from '../../shared/tensors.js';
import type { Capture } from '../capture/capture.js';
import type { DriftMonitor } from '../drift/monitor.js';
import { MicroBatcher } from '../runtime/batcher.js';
import type { ModelHost, ServingModel } from '../runtime/host.js';
import type { ShadowRunner } from '../runtime/shadow.js';
import type { InferenceStats } from '../telemetry/stats.js';
import { type CompiledModel, compileModel } from './validate.js';

export interface ServerDeps {
  host: ModelHost;
  stats: InferenceStats;
  log: Logger;
  agentVersion: string;
  /** Most rows one adaptive batch may carry (1 disables batching). */
  maxBatchRows: number;
  /** Data capture for the fleet's pool (absent: nothing is captured, feedback is acknowledged only). */
  capture?: Capture | undefined;
  /** Candidates shadowing active models: a share of requests is mirrored to them after the response. */
  shadow?: ShadowRunner | undefined;
  /** Drift monitoring of active models (absent: off); it takes requests after the response, off its path. */
  drift?: DriftMonitor | undefined;
}

const LabelSchema = z.union([z.string().min(1).max(128), z.number().finite()]);
const FeedbackSchema = z
  .object({
    id: z.string().min(1).max(160),
    label: LabelSchema.optional(),
    labels: z.array(LabelSchema).min(1).max(65_536).optional(),
  })
  .refine((f) => (f.label === undefined) !== (f.labels === undefined), {
    message: 'give exactly one of label or labels',
  });

interface Prepared {
  validator: CompiledModel;
  batcher: MicroBatcher;
}

export function createInferenceApi(deps: ServerDeps): Hono {
  const { host, stats } = deps;
  const app = new Hono();
  // Per served model version: its request validator and its batcher (a new activation gets new ones).
  const prepared = new WeakMap<ServingModel, Prepared>();
  const registry = new Registry();
  const requests = new Counter({
    name: 'edgefleet_inference_requests_total',
    help: 'Inference requests',
    labelNames: ['model', 'outcome'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'edgefleet_inference_duration_seconds',
    help: 'Inference request duration, parse to response',
    labelNames: ['model'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  new Gauge({
    name: 'edgefleet_model_version',
    help: 'Active model version',
    labelNames: ['model', 'execution_provider'],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of host.all())
        this.set({ model: m.name, execution_provider: m.loaded.provider }, m.version);
    },
  });

  if (deps.drift) {
    const drift = deps.drift;
    new Gauge({
      name: 'edgefleet_drift_verdict',
      help: "The drift monitor's current verdict per active model (1 for the verdict in force)",
      labelNames: ['model', 'version', 'verdict'],
      registers: [registry],
      collect() {
        this.reset();
        for (const m of drift.snapshot())
          for (const verdict of DRIFT_VERDICTS)
            this.set(
              { model: m.model.name, version: String(m.model.version), verdict },
              m.verdict === verdict ? 1 : 0,
            );
      },
    });
    new Gauge({
      name: 'edgefleet_drift_drifted_share',
      help: 'Share of features that drifted in the latest closed window',
      labelNames: ['model'],
      registers: [registry],
      collect() {
        this.reset();
        for (const m of drift.snapshot()) this.set({ model: m.model.name }, m.driftedShare);
      },
    });
    new Gauge({
      name: 'edgefleet_drift_concept',
      help: 'Concept drift detected on feedback and not yet cleared (1) or not (0)',
      labelNames: ['model'],
      registers: [registry],
      collect() {
        this.reset();
        for (const m of drift.snapshot()) this.set({ model: m.model.name }, m.concept ? 1 : 0);
      },
    });
    new Gauge({
      name: 'edgefleet_drift_rows_absorbed',
      help: 'Rows the drift monitor has counted since the agent started',
      registers: [registry],
      collect() {
        this.set(drift.counters.absorbedRows);
      },
    });
    new Gauge({
      name: 'edgefleet_drift_requests_left_out',
      help: 'Requests left out of drift monitoring because its queue was full, since the agent started',
      registers: [registry],
      collect() {
        this.set(drift.counters.dropped);
      },
    });
  }

  // The fleet's API answers from the same map: a family's status, else 500 with a generic message (logged here).
  app.onError((err, c) => {
    const answer = httpErrorOf(err);
    if (answer.serverFault) deps.log.error({ err, path: c.req.path }, 'inference api error');
    return c.json(answer.body, answer.status);
  });
  app.notFound((c) =>
    c.json({ error: { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` } }, 404),
  );

  const serving = (name: string): ServingModel => {
    const model = host.get(name);
    if (!model) throw new NotFoundError('model', name);
    return model;
  };

  app.get('/v2', (c) => c.json({ name: 'edgefleet-agent', version: deps.agentVersion, extensions: [] }));
  app.get('/v2/health/live', (c) => c.json({ live: true }));
  app.get('/v2/health/ready', (c) => {
    const ready = host.all().length > 0;
    return c.json({ ready }, ready ? 200 : 503);
  });
  app.get('/v2/models/:name', (c) => {
    const m = serving(c.req.param('name'));
    const tensor = (t: ServingModel['manifest']['inputs'][number]) => ({
      name: t.name,
      datatype: OIP_DATATYPE[t.dtype],
      shape: t.shape.map((d) => (typeof d === 'number' ? d : -1)),
    });
    return c.json({
      name: m.name,
      versions: [String(m.version)],
      platform: 'onnxruntime',
      execution_provider: m.loaded.provider,
      inputs: m.manifest.inputs.map(tensor),
      outputs: m.manifest.outputs.map(tensor),
    });
  });
  app.get('/v2/models/:name/ready', (c) => {
    const ready = host.get(c.req.param('name')) !== undefined;
    return c.json({ name: c.req.param('name'), ready }, ready ? 200 : 503);
  });

  const infer = async (name: string, version: string | undefined, bodyText: string) => {
    // Held for the request: an activation or rollback meanwhile releases this session only after we are done.
    const model = host.use(name);
    if (!model) throw new NotFoundError('model', name);
    try {
      return await inferOn(model, version, bodyText);
    } finally {
      host.done(model);
    }
  };

  const inferOn = async (model: ServingModel, version: string | undefined, bodyText: string) => {
    const name = model.name;
    if (version !== undefined && version !== String(model.version)) {
      throw new NotFoundError('model version', `${name}@${version} (serving v${model.version})`);
    }
    let ready = prepared.get(model);
    if (!ready) {
      ready = {
        validator: compileModel(model.manifest),
        batcher: new MicroBatcher(
          model.loaded,
          model.manifest.inputs,
          model.manifest.outputs,
          deps.maxBatchRows,
        ),
      };
      prepared.set(model, ready);
    }
    const request = ready.validator.parse(parseJsonBody(bodyText));
    const results = await ready.batcher.run(request.feeds);
    deps.shadow?.offer(
      { name: model.name, version: model.version },
      model.loaded,
      request.feeds,
      results,
      model.manifest.outputs[0]!.name,
    );
    const names = request.outputs ?? model.manifest.outputs.map((o) => o.name);
    // Every response carries an id, so the app can send ground truth for it later.
    const id = request.id ?? randomUUID();
    const input = request.feeds[model.manifest.inputs[0]!.name];
    const output = results[model.manifest.outputs[0]!.name];
    deps.capture?.offer({ name: model.name, version: model.version }, id, input, output);
    deps.drift?.offer(model, id, input, output);
    return {
      model_name: model.name,
      model_version: String(model.version),
      id,
      outputs: names.map((n) => {
        const t = results[n]!;
        const spec = model.manifest.outputs.find((o) => o.name === n)!;
        return { name: n, shape: t.dims, datatype: OIP_DATATYPE[spec.dtype], data: toJsonNumbers(t.data) };
      }),
    };
  };

  const handleInfer = async (name: string, version: string | undefined, bodyText: string) => {
    const started = performance.now();
    deps.shadow?.enter();
    let ok = false;
    try {
      const response = await infer(name, version, bodyText);
      ok = true;
      return response;
    } finally {
      deps.shadow?.leave();
      const ms = performance.now() - started;
      // Count only requests for models this device serves; unknown names are the caller's mistake.
      if (host.get(name)) {
        stats.record(name, ms, ok);
        requests.inc({ model: name, outcome: ok ? 'ok' : 'error' });
        latency.observe({ model: name }, ms / 1000);
      }
    }
  };

  app.post('/v2/models/:name/infer', async (c) =>
    c.json(await handleInfer(c.req.param('name'), undefined, await c.req.text())),
  );
  app.post('/v2/models/:name/versions/:version/infer', async (c) =>
    c.json(await handleInfer(c.req.param('name'), c.req.param('version'), await c.req.text())),
  );

  app.post('/v2/models/:name/feedback', async (c) => {
    const model = serving(c.req.param('name'));
    const parsed = FeedbackSchema.safeParse(parseJsonBody(await c.req.text()));
    if (!parsed.success) {
      throw new ValidationError(
        `feedback needs {"id": "<request id>", "label": <class or number>} or "labels": [...] per row (${parsed.error.issues[0]?.message})`,
      );
    }
    const { id, label, labels } = parsed.data;
    deps.drift?.feedback(model.name, id, labels ?? label!);
    const captured = deps.capture ? await deps.capture.feedback(model.name, id, labels ?? label!) : false;
    return c.json({ id, captured });
  });

  app.get('/metrics', async (c) =>
    c.text(await registry.metrics(), 200, { 'content-type': registry.contentType }),
  );
  return app;
}

/** A request body as JSON; text that is not JSON is the caller's mistake (400 `invalid_json`). */
function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`request body is not JSON: ${(err as Error).message}`, {
      code: 'invalid_json',
    });
  }
}
