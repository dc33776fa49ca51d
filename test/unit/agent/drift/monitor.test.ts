import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DriftMonitor, type DriftMonitorOptions } from '../../../../agent/drift/monitor.js';
import { ModelHost, type ServingModel } from '../../../../agent/runtime/host.js';
import type { FeedTensor, OutputTensor } from '../../../../agent/runtime/ort.js';
import { createInferenceApi } from '../../../../agent/server/app.js';
import { InferenceStats } from '../../../../agent/telemetry/stats.js';
import { REFERENCE_STATS_SCHEMA, type ReferenceStats } from '../../../../shared/drift/reference.js';
import { mulberry32 } from '../../../../shared/onnx/mlp.js';
import type { DriftMessage } from '../../../../shared/protocol/messages.js';

/** Two features uniform over [0, 4) in four bins; a two-class model predicting each class half the time. */
const REFERENCE: ReferenceStats = {
  schema: REFERENCE_STATS_SCHEMA,
  rows: 10_000,
  features: ['a', 'b'].map((name) => ({
    name,
    mean: 2,
    std: 1.15,
    min: 0,
    max: 4,
    bins: { edges: [0, 1, 2, 3, 4], proportions: [0.25, 0.25, 0.25, 0.25] },
  })),
  predictions: { kind: 'classification', classes: ['no', 'yes'], proportions: [0.5, 0.5] },
};

function serving(version: number, referenceStats: unknown = REFERENCE): ServingModel {
  return {
    name: 'm',
    version,
    slot: 'a',
    manifest: { inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 2] }], referenceStats },
    loaded: { release: async () => undefined, provider: 'cpu' },
  } as unknown as ServingModel;
}

function request(rows: number, value: () => number, yes: () => boolean): [FeedTensor, OutputTensor] {
  const data = new Float32Array(rows * 2);
  for (let i = 0; i < data.length; i++) data[i] = value();
  const out = new Float32Array(rows * 2);
  for (let r = 0; r < rows; r++) {
    const p = yes() ? 0.8 : 0.2;
    out[r * 2] = 1 - p;
    out[r * 2 + 1] = p;
  }
  return [
    { dtype: 'float32', data, dims: [rows, 2] },
    { dtype: 'float32', data: out, dims: [rows, 2] },
  ];
}

function setup(overrides: Partial<DriftMonitorOptions> = {}) {
  let t = 1_000_000;
  const reports: DriftMessage[] = [];
  const changes: boolean[] = [];
  const host = new ModelHost();
  const model = serving(1);
  host.swap(model);
  let n = 0;
  const monitor = new DriftMonitor(host, {
    windowSamples: 200,
    windowMs: 60_000,
    reportIntervalMs: 30_000,
    queueLimit: 1000,
    feedbackMemory: 1000,
    now: () => t,
    newId: () => `id-${++n}`,
    publish: (m) => reports.push(m),
    onDriftChange: (d) => changes.push(d),
    captureRate: () => 0.01,
    log: pino({ level: 'silent' }),
    ...overrides,
  });
  return {
    host,
    model,
    monitor,
    reports,
    changes,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('DriftMonitor', () => {
  it('gives no verdict before a window closes, then no drift on data like the reference', () => {
    const { model, monitor, reports, changes } = setup();
    const r = mulberry32(1);
    for (let i = 0; i < 199; i++)
      monitor.offer(
        model,
        `q${i}`,
        ...request(
          1,
          () => r() * 4,
          () => r() < 0.5,
        ),
      );
    monitor.absorbQueued();
    expect(reports).toHaveLength(0);
    expect(monitor.monitorOf('m')?.verdict).toBe('insufficient_data');
    monitor.offer(
      model,
      'last',
      ...request(
        1,
        () => r() * 4,
        () => r() < 0.5,
      ),
    );
    monitor.absorbQueued();
    expect(reports).toHaveLength(1);
    const report = reports[0]!;
    expect(report).toMatchObject({
      type: 'drift',
      cause: 'verdict_change',
      verdict: 'no_drift',
      model: { name: 'm', version: 1 },
    });
    expect(report.window).toMatchObject({ samples: 200, closedBy: 'count' });
    expect(report.features.map((f) => f.name)).toEqual(['a', 'b']);
    expect(report.features.every((f) => !f.drifted)).toBe(true);
    expect(report.prediction).toMatchObject({ test: 'chi2', drifted: false });
    expect(changes).toEqual([]);
  });

  it('reports drift when the inputs shift, names the features, and asks for more capture', () => {
    const { model, monitor, reports, changes } = setup();
    const r = mulberry32(2);
    // Feature a moved to the top bin; b unchanged. Batched requests count every row.
    for (let i = 0; i < 20; i++) {
      const [input, output] = request(
        10,
        () => r() * 4,
        () => r() < 0.5,
      );
      for (let row = 0; row < 10; row++) (input.data as Float32Array)[row * 2] = 3 + r();
      monitor.offer(model, `q${i}`, input, output);
    }
    monitor.absorbQueued();
    expect(reports).toHaveLength(1);
    const report = reports[0]!;
    expect(report.verdict).toBe('drift'); // 1 of 2 features = driftShare 0.5
    expect(report.driftedShare).toBe(0.5);
    expect(report.features.find((f) => f.name === 'a')).toMatchObject({ drifted: true });
    expect(report.features.find((f) => f.name === 'b')).toMatchObject({ drifted: false });
    expect(report.features.find((f) => f.name === 'a')!.psi).toBeGreaterThan(1);
    expect(changes).toEqual([true]);

    // Back to the reference distribution: the next window clears it, and capture goes back down.
    for (let i = 0; i < 200; i++)
      monitor.offer(
        model,
        `p${i}`,
        ...request(
          1,
          () => r() * 4,
          () => r() < 0.5,
        ),
      );
    monitor.absorbQueued();
    expect(reports.at(-1)).toMatchObject({ verdict: 'no_drift', cause: 'verdict_change' });
    expect(changes).toEqual([true, false]);
  });

  it("shows its state in the agent's Prometheus metrics", async () => {
    const { host, model, monitor } = setup();
    const r = mulberry32(9);
    for (let i = 0; i < 20; i++) {
      const [input, output] = request(
        10,
        () => r() * 4,
        () => r() < 0.5,
      );
      for (let row = 0; row < 10; row++) (input.data as Float32Array)[row * 2] = 3 + r();
      monitor.offer(model, `q${i}`, input, output);
    }
    monitor.absorbQueued();
    const app = createInferenceApi({
      host,
      stats: new InferenceStats(16),
      log: pino({ level: 'silent' }),
      agentVersion: 'test',
      maxBatchRows: 1,
      drift: monitor,
    });
    const metrics = await (await app.request('/metrics')).text();
    expect(metrics).toContain('edgefleet_drift_verdict{model="m",version="1",verdict="drift"} 1');
    expect(metrics).toContain('edgefleet_drift_verdict{model="m",version="1",verdict="no_drift"} 0');
    expect(metrics).toContain('edgefleet_drift_drifted_share{model="m"} 0.5');
    expect(metrics).toContain('edgefleet_drift_concept{model="m"} 0');
    expect(metrics).toContain('edgefleet_drift_rows_absorbed 200');
    expect(metrics).toContain('edgefleet_drift_requests_left_out 0');
  });

  it('detects prediction drift on the output distribution', () => {
    const { model, monitor, reports } = setup();
    const r = mulberry32(3);
    for (let i = 0; i < 200; i++)
      monitor.offer(
        model,
        `q${i}`,
        ...request(
          1,
          () => r() * 4,
          () => r() < 0.9,
        ),
      );
    monitor.absorbQueued();
    expect(reports[0]!.prediction).toMatchObject({ test: 'chi2', drifted: true });
    expect(reports[0]!.verdict).toBe('no_drift'); // the inputs did not move
  });

  it('closes a window by time once it holds enough rows; a quiet device keeps its window open', () => {
    const { model, monitor, reports, advance } = setup({ reportIntervalMs: 100_000 });
    const r = mulberry32(4);
    for (let i = 0; i < 50; i++)
      monitor.offer(
        model,
        `q${i}`,
        ...request(
          1,
          () => 3 + r(),
          () => r() < 0.5,
        ),
      );
    monitor.absorbQueued();
    advance(60_000);
    monitor.tick();
    // 50 rows are too few for a verdict: the window stays open, nothing is reported, still no verdict.
    expect(reports).toHaveLength(0);
    expect(monitor.monitorOf('m')).toMatchObject({ rows: 50, verdict: 'insufficient_data' });
    advance(40_000);
    monitor.tick();
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({
      cause: 'schedule',
      verdict: 'insufficient_data',
      window: null,
      features: [],
    });
    // Enough rows later (still under the count window): the time window closes with a verdict.
    for (let i = 0; i < 60; i++)
      monitor.offer(
        model,
        `p${i}`,
        ...request(
          1,
          () => 3 + r(),
          () => r() < 0.5,
        ),
      );
    monitor.absorbQueued();
    monitor.tick();
    expect(reports.at(-1)).toMatchObject({ cause: 'verdict_change', verdict: 'drift' });
    expect(reports.at(-1)!.window).toMatchObject({ samples: 110, closedBy: 'time' });
  });

  it('reports on its schedule with the latest verdict', () => {
    const { model, monitor, reports, advance } = setup();
    const r = mulberry32(5);
    for (let i = 0; i < 200; i++)
      monitor.offer(
        model,
        `q${i}`,
        ...request(
          1,
          () => r() * 4,
          () => r() < 0.5,
        ),
      );
    monitor.absorbQueued();
    advance(30_000);
    monitor.tick();
    expect(reports.map((m) => [m.cause, m.verdict])).toEqual([
      ['verdict_change', 'no_drift'],
      ['schedule', 'no_drift'],
    ]);
  });

  it('keeps its cost bounded: a full queue leaves requests out and counts them', async () => {
    const { model, monitor, reports, advance } = setup({ queueLimit: 3 });
    for (let i = 0; i < 10; i++)
      monitor.offer(
        model,
        `q${i}`,
        ...request(
          1,
          () => 1,
          () => true,
        ),
      );
    expect(monitor.counters.dropped).toBe(7);
    // The queue drains in a later turn of the event loop, off the response path.
    await new Promise((resolve) => setImmediate(resolve));
    expect(monitor.counters.absorbedRows).toBe(3);
    advance(30_000);
    monitor.tick();
    expect(reports[0]!.dropped).toBe(7);
  });

  it('detects concept drift from feedback: the loss on labeled requests rises', () => {
    const { model, monitor, reports, changes } = setup();
    const r = mulberry32(6);
    let fired = -1;
    for (let i = 0; i < 2000 && fired < 0; i++) {
      const yes = r() < 0.5;
      monitor.offer(
        model,
        `q${i}`,
        ...request(
          1,
          () => r() * 4,
          () => yes,
        ),
      );
      // Right 95% of the time for the first 500, then wrong 70% of the time.
      const wrong = r() < (i < 500 ? 0.05 : 0.7);
      monitor.feedback('m', `q${i}`, yes !== wrong ? 'yes' : 'no');
      if (reports.some((m) => m.concept.drifted)) fired = i;
    }
    expect(fired).toBeGreaterThan(500);
    expect(fired).toBeLessThan(800);
    const report = reports.find((m) => m.concept.drifted)!;
    expect(report.cause).toBe('verdict_change');
    expect(report.concept.detections.pageHinkley + report.concept.detections.adwin).toBeGreaterThan(0);
    expect(changes[0]).toBe(true);
  });

  it('remembers a bounded number of recent outputs, scores each request once, and forgets the oldest', () => {
    const { model, monitor } = setup({ feedbackMemory: 3 });
    // Outputs are kept only once the app has shown it sends ground truth for the model.
    monitor.offer(
      model,
      'before',
      ...request(
        1,
        () => 1,
        () => true,
      ),
    );
    monitor.absorbQueued();
    monitor.feedback('m', 'before', 'yes');
    for (let i = 0; i < 5; i++)
      monitor.offer(
        model,
        `q${i}`,
        ...request(
          1,
          () => 1,
          () => true,
        ),
      );
    monitor.absorbQueued();
    const labeled = () =>
      (monitor as unknown as { monitors: Map<string, { labeled: number }> }).monitors.get('m')!.labeled;
    monitor.feedback('m', 'q0', 'yes'); // pushed out by q3 and q4
    monitor.feedback('m', 'q1', 'yes');
    expect(labeled()).toBe(0);
    monitor.feedback('m', 'q4', 'yes');
    monitor.feedback('m', 'q4', 'yes'); // once only
    monitor.feedback('m', 'q2', 'no');
    expect(labeled()).toBe(2);
  });

  it('scores nothing for feedback it cannot match to a remembered request', () => {
    const { monitor, reports } = setup();
    monitor.feedback('m', 'never-seen', 'yes');
    monitor.feedback('other-model', 'x', 'yes');
    expect(reports).toHaveLength(0);
  });

  it('starts afresh for a new version, and leaves models without reference statistics unmonitored', () => {
    const { host, model, monitor, reports } = setup();
    const r = mulberry32(7);
    for (let i = 0; i < 150; i++)
      monitor.offer(
        model,
        `q${i}`,
        ...request(
          1,
          () => r() * 4,
          () => r() < 0.5,
        ),
      );
    monitor.absorbQueued();
    expect(monitor.monitorOf('m')?.rows).toBe(150);
    const v2 = serving(2);
    host.swap(v2);
    expect(monitor.monitorOf('m')).toMatchObject({ ref: { version: 2 }, rows: 0 });
    // Requests still queued for v1 are not counted against v2.
    monitor.offer(
      model,
      'late',
      ...request(
        1,
        () => 1,
        () => true,
      ),
    );
    monitor.absorbQueued();
    expect(monitor.monitorOf('m')?.rows).toBe(0);

    host.swap(serving(3, null));
    expect(monitor.monitorOf('m')).toBeUndefined();
    expect(monitor.counters.unmonitored).toBe(1);
    expect(reports).toHaveLength(0);
  });
});
