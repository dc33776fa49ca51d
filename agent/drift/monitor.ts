/**
 * Drift monitoring on the device, one monitor per active model, against the reference statistics signed into
 * its manifest. Nothing here runs on the response path: the inference route hands over references to the
 * request's input and output tensors (one array push; a full queue drops the request from monitoring and
 * counts it), and they are absorbed in a later turn of the event loop, in batches.
 *
 * Windows: each feature's values are counted over the reference bin edges (fixed memory per feature,
 * whatever the traffic). A window closes when it holds `windowSamples` rows (count window), or when it is
 * `windowMs` old and holds at least `minSamples` rows (time window, for slow devices); a quiet device's window
 * stays open until it has enough rows, so quiet hours never flip a verdict. A closed window gets a verdict
 * (shared/drift/verdict.ts: KS per feature, corrected across features, drift at `driftShare`) and prediction
 * drift on the output distribution. Before the first closed window the verdict is "insufficient_data",
 * never "no_drift".
 *
 * Concept drift: once the app has sent ground truth for a model, the outputs of its recent requests are
 * remembered (bounded, preallocated rings) so later ground truth (`/feedback`) can be scored: 0–1 loss for classifiers; for regressors the absolute error over
 * the reference prediction range, capped at 1, so both detectors see values in [0, 1]. Page–Hinkley and
 * ADWIN watch that loss.
 *
 * Reports: at every verdict change (and when a concept detector fires), and every `reportIntervalMs`.
 * While the dataset drifts or concept drift was detected, `onDriftChange(true)` lets the agent capture
 * more data for the fleet's pool.
 */
import type { Logger } from 'pino';
import { Adwin } from '../../shared/drift/adwin.js';
import { binCount, binIndex } from '../../shared/drift/bins.js';
import { PageHinkley } from '../../shared/drift/page-hinkley.js';
import { PredictionCounts, predictionDrift } from '../../shared/drift/prediction.js';
import { type ReferenceStats, ReferenceStatsSchema } from '../../shared/drift/reference.js';
import { DEFAULT_DRIFT_OPTIONS, type DriftOptions, driftVerdict } from '../../shared/drift/verdict.js';
import {
  type DriftMessage,
  type DriftVerdictName,
  type ModelRef,
  PROTOCOL_VERSION,
} from '../../shared/protocol/messages.js';
import type { ModelHost, ServingModel } from '../runtime/host.js';
import type { FeedTensor, OutputTensor } from '../runtime/ort.js';

export interface DriftMonitorOptions {
  /** Rows that close a window. */
  windowSamples: number;
  /** Age that closes a window, ms. */
  windowMs: number;
  /** Scheduled report period, ms. */
  reportIntervalMs: number;
  /** Requests waiting to be absorbed; beyond, requests are left out of monitoring (counted). */
  queueLimit: number;
  /** Recent requests whose outputs are kept for scoring feedback. */
  feedbackMemory: number;
  drift?: Partial<DriftOptions>;
  now: () => number;
  newId: () => string;
  publish: (message: DriftMessage) => void;
  /** Told when the device starts or stops seeing drift on any model (the agent raises its capture rate). */
  onDriftChange?: (drifting: boolean) => void;
  /** The capture rate in force, for reports. */
  captureRate: () => number;
  log: Logger;
}

interface Pending {
  input: FeedTensor;
  output: OutputTensor;
  requestId: string;
}

type Outcome = { verdict: DriftVerdictName; message: Omit<DriftMessage, 'v' | 'id' | 'ts' | 'cause'> };

/** One active model's monitor: counts of the open window, the latest closed window's outcome, concept state. */
class ModelMonitor {
  readonly ref: ModelRef;
  readonly width: number;
  /** Flat edges and counts: feature j's bins start at `offsets[j]`. */
  private readonly edges: Float64Array[];
  private readonly offsets: Int32Array;
  readonly counts: Float64Array;
  readonly predictions: PredictionCounts;
  rows = 0;
  windowStart: number;
  verdict: DriftVerdictName = 'insufficient_data';
  verdictSince: number;
  last: Outcome | null = null;
  dropped = 0;
  /**
   * Outputs of recent requests, for scoring feedback, in preallocated rings (no allocation per request, no
   * request buffers kept alive): output values by row, and request ids (to forget the oldest). Each id maps
   * to its first row's absolute index × ROWS_PACK + its row count; rows overwritten since are gone.
   */
  private readonly recentIds: (string | undefined)[];
  private nextId = 0;
  private readonly recentValues: Float64Array;
  private rowsWritten = 0;
  private readonly recentAt = new Map<string, number>();
  readonly outWidth: number;
  /** Threshold 100 rather than the libraries' 50: on a 0–1 loss at a steady 10–50% error rate, 50 raises a
   *  false alarm every 20k–200k labels (measured); 100 makes that far rarer at twice the detection delay. */
  readonly pageHinkley = new PageHinkley({ threshold: 100 });
  readonly adwin = new Adwin();
  labeled = 0;
  conceptDetections = { pageHinkley: 0, adwin: 0 };
  /** A concept detector fired since the previous report. */
  conceptDrifted = false;
  /** Concept drift seen and not yet cleared by a closed window without a detection (keeps capture raised). */
  conceptActive = false;
  /** A concept detector fired during the open window. */
  conceptInWindow = false;

  constructor(
    public model: ServingModel,
    readonly reference: ReferenceStats,
    now: number,
    feedbackMemory: number,
  ) {
    this.recentIds = new Array(feedbackMemory);
    this.ref = { name: model.name, version: model.version };
    this.width = reference.features.length;
    this.edges = reference.features.map((f) => Float64Array.from(f.bins.edges));
    this.offsets = new Int32Array(this.width + 1);
    for (let j = 0; j < this.width; j++) this.offsets[j + 1] = this.offsets[j]! + binCount(this.edges[j]!);
    this.counts = new Float64Array(this.offsets[this.width]!);
    this.predictions = new PredictionCounts(reference.predictions);
    this.outWidth =
      reference.predictions.kind === 'classification' ? reference.predictions.classes.length : 1;
    this.recentValues = new Float64Array(feedbackMemory * this.outWidth);
    this.windowStart = now;
    this.verdictSince = now;
  }

  /** Count every row of one request; returns the rows counted. No allocation per row or per value. */
  absorb(input: FeedTensor, output: OutputTensor): number {
    const data = input.data as ArrayLike<number>;
    const w = this.width;
    const rows = Math.floor(data.length / w);
    const bigint = typeof (data as ArrayLike<unknown>)[0] === 'bigint'; // int64 inputs
    const { counts, offsets, edges } = this;
    for (let r = 0; r < rows; r++) {
      const base = r * w;
      for (let j = 0; j < w; j++) {
        const v = bigint ? Number(data[base + j]) : data[base + j]!;
        counts[offsets[j]! + binIndex(edges[j]!, v)]!++;
      }
    }
    const out = output.data as ArrayLike<number>;
    if (rows > 0) this.predictions.addOutputRows(out, rows, Math.floor(out.length / rows));
    this.rows += rows;
    return rows;
  }

  /** The app has sent ground truth for this model: from then on, outputs are remembered for scoring. */
  feedbackSeen = false;

  /** Keep a request's output rows (copied into the ring) until feedback scores them or newer rows push them out. */
  remember(requestId: string, output: OutputTensor, rows: number): void {
    if (!this.feedbackSeen) return; // apps that never send ground truth pay nothing for it
    const capacity = this.recentIds.length;
    const k = this.outWidth;
    const data = output.data as ArrayLike<number>;
    if (rows < 1 || rows > Math.min(capacity, ROWS_PACK - 1) || data.length !== rows * k) return;
    const evicted = this.recentIds[this.nextId];
    if (evicted !== undefined) this.recentAt.delete(evicted);
    this.recentIds[this.nextId] = requestId;
    this.nextId = (this.nextId + 1) % capacity;
    const values = this.recentValues;
    for (let r = 0; r < rows; r++) {
      const at = ((this.rowsWritten + r) % capacity) * k;
      for (let c = 0; c < k; c++) values[at + c] = Number(data[r * k + c]);
    }
    this.recentAt.set(requestId, this.rowsWritten * ROWS_PACK + rows);
    this.rowsWritten += rows;
  }

  /** The remembered output rows of a request, taken out of memory (feedback scores a request once). */
  recall(requestId: string): Float64Array | undefined {
    const packed = this.recentAt.get(requestId);
    if (packed === undefined) return undefined;
    this.recentAt.delete(requestId);
    const start = Math.floor(packed / ROWS_PACK);
    const rows = packed % ROWS_PACK;
    const capacity = this.recentIds.length;
    if (this.rowsWritten - start > capacity) return undefined; // overwritten by newer rows
    const k = this.outWidth;
    const out = new Float64Array(rows * k);
    for (let r = 0; r < rows; r++) {
      out.set(
        this.recentValues.subarray(((start + r) % capacity) * k, ((start + r) % capacity) * k + k),
        r * k,
      );
    }
    return out;
  }

  /** Close the open window: its verdict, prediction drift and the counts reset. */
  close(now: number, closedBy: 'count' | 'time', options: Partial<DriftOptions>): Outcome {
    const features = this.reference.features.map((f, j) => ({
      name: f.name,
      referenceProportions: f.bins.proportions,
      referenceRows: this.reference.rows,
      counts: Array.from(this.counts.subarray(this.offsets[j]!, this.offsets[j + 1]!)),
    }));
    const result = driftVerdict(features, options);
    const prediction = predictionDrift(
      this.reference.predictions,
      this.predictions.counts,
      this.reference.rows,
      options,
    );
    const outcome: Outcome = {
      verdict: result.verdict,
      message: {
        type: 'drift',
        model: this.ref,
        verdict: result.verdict,
        verdictSince: this.verdictSince,
        window: {
          startedAt: Math.round(this.windowStart),
          endedAt: Math.round(now),
          samples: this.rows,
          closedBy,
        },
        driftedShare: result.verdict === 'insufficient_data' ? 0 : result.driftedShare,
        features: result.features.map((f) => ({
          ...f,
          psi: finite(f.psi),
          jensenShannon: finite(f.jensenShannon),
        })),
        prediction:
          'test' in prediction
            ? {
                test: prediction.test,
                statistic: finite(prediction.statistic),
                pValue: prediction.pValue,
                psi: finite(prediction.psi),
                jensenShannon: finite(prediction.jensenShannon),
                drifted: prediction.drifted,
              }
            : null,
        concept: this.conceptReport(),
        dropped: 0,
        captureRate: 0,
      },
    };
    this.counts.fill(0);
    this.predictions.reset();
    this.rows = 0;
    this.windowStart = now;
    return outcome;
  }

  conceptReport(): DriftMessage['concept'] {
    return {
      labeled: this.labeled,
      meanLoss: this.labeled > 0 ? this.adwin.mean : null,
      drifted: this.conceptDrifted,
      detections: { ...this.conceptDetections },
    };
  }

  /** The loss of one labeled row, in [0, 1]; null when the label cannot be scored against this model. */
  loss(output: ArrayLike<number>, row: number, label: string | number): number | null {
    const p = this.reference.predictions;
    if (p.kind === 'classification') {
      const k = p.classes.length;
      if (output.length < (row + 1) * k) return null;
      let cls = typeof label === 'string' ? p.classes.indexOf(label) : p.classes.indexOf(String(label));
      if (cls < 0 && typeof label === 'number' && Number.isInteger(label) && label >= 0 && label < k)
        cls = label;
      if (cls < 0) return null;
      let best = 0;
      for (let c = 1; c < k; c++) if (Number(output[row * k + c]) > Number(output[row * k + best])) best = c;
      return best === cls ? 0 : 1;
    }
    const y = typeof label === 'number' ? label : Number(label);
    if (!Number.isFinite(y) || output.length <= row) return null;
    const edges = p.bins.edges;
    const range = edges[edges.length - 1]! - edges[0]!;
    return Math.min(1, Math.abs(Number(output[row]) - y) / (range > 0 ? range : 1));
  }
}

/** Packs a row count beside a row index in one number (requests of up to 4095 rows are remembered). */
const ROWS_PACK = 4096;

/** JSON has no Infinity: a distance that overflowed is reported as the largest finite number. */
function finite(x: number): number {
  return Number.isFinite(x) ? x : Number.MAX_VALUE;
}

export class DriftMonitor {
  private readonly monitors = new Map<string, ModelMonitor>();
  /** Models found unmonitorable (said once, not again at every host change). */
  private readonly rejected = new WeakSet<ServingModel>();
  private readonly queue: (Pending & { monitor: ModelMonitor })[] = [];
  private draining = false;
  private drifting = false;
  private timer: NodeJS.Timeout | null = null;
  private lastReport: number;
  /** Counters for telemetry and tests. */
  readonly counters = { absorbedRows: 0, dropped: 0, reports: 0, unmonitored: 0 };

  constructor(
    private readonly host: ModelHost,
    private readonly o: DriftMonitorOptions,
  ) {
    this.lastReport = o.now();
    this.sync();
    host.onChange(() => this.sync());
  }

  /** Start the clock: time windows and scheduled reports. */
  start(tickMs = Math.max(50, Math.min(1000, this.o.windowMs / 4, this.o.reportIntervalMs / 4))): void {
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The monitor of `name`, if its active model can be monitored (tests, bench). */
  monitorOf(name: string): { ref: ModelRef; rows: number; verdict: DriftVerdictName } | undefined {
    return this.monitors.get(name);
  }

  /** Each monitored model's state now, for the agent's Prometheus metrics. */
  snapshot(): {
    model: ModelRef;
    verdict: DriftVerdictName;
    driftedShare: number;
    concept: boolean;
    openRows: number;
  }[] {
    return [...this.monitors.values()].map((m) => ({
      model: m.ref,
      verdict: m.verdict,
      driftedShare: m.last?.message.driftedShare ?? 0,
      concept: m.conceptActive,
      openRows: m.rows,
    }));
  }

  /** The outcome of the latest closed window of `name`'s model (tests, the bench). */
  lastWindow(name: string): Outcome['message'] | undefined {
    return this.monitors.get(name)?.last?.message;
  }

  /** Called after a successful inference. Never throws, never waits: one map lookup and an array push. */
  offer(
    model: ServingModel,
    requestId: string,
    input: FeedTensor | undefined,
    output: OutputTensor | undefined,
  ): void {
    const monitor = this.monitors.get(model.name);
    if (!monitor || monitor.model !== model || !input || !output) return;
    if (this.queue.length >= this.o.queueLimit) {
      monitor.dropped++;
      this.counters.dropped++;
      return;
    }
    this.queue.push({ monitor, input, output, requestId });
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => this.drain());
    }
  }

  /** Ground truth for a request (same labels as `/feedback`): scored when the request's output is remembered. */
  feedback(name: string, requestId: string, labels: string | number | (string | number)[]): void {
    const monitor = this.monitors.get(name);
    if (!monitor) return;
    // The request may still be waiting in the queue: absorb what is there first.
    if (this.queue.length > 0) this.absorbQueued();
    monitor.feedbackSeen = true;
    const output = monitor.recall(requestId);
    if (!output) return;
    const rows = Array.isArray(labels)
      ? labels.length
      : Math.max(1, Math.floor(output.length / monitor.outWidth));
    let fired = false;
    for (let r = 0; r < rows; r++) {
      const label = Array.isArray(labels) ? labels[r]! : labels;
      const loss = monitor.loss(output, r, label);
      if (loss === null) continue;
      monitor.labeled++;
      if (monitor.pageHinkley.update(loss)) {
        monitor.conceptDetections.pageHinkley++;
        fired = true;
      }
      // ADWIN cuts on any change of the mean; only a rise of the loss is concept drift.
      const before = monitor.adwin.mean;
      if (monitor.adwin.update(loss) && monitor.adwin.mean > before) {
        monitor.conceptDetections.adwin++;
        fired = true;
      }
    }
    if (fired) monitor.conceptInWindow = true;
    if (fired && !monitor.conceptDrifted) {
      monitor.conceptDrifted = true;
      monitor.conceptActive = true;
      this.o.log.warn({ model: monitor.ref, concept: monitor.conceptReport() }, 'concept drift detected');
      this.updateDrifting();
      this.report(monitor, 'verdict_change');
    }
  }

  /** Absorb everything queued now (tests and the bench call it to measure without the event loop). */
  absorbQueued(): void {
    const batch = this.queue.splice(0, this.queue.length);
    const now = this.o.now();
    for (const { monitor, input, output, requestId } of batch) {
      if (this.monitors.get(monitor.ref.name) !== monitor) continue; // the model changed meanwhile
      const rows = monitor.absorb(input, output);
      this.counters.absorbedRows += rows;
      monitor.remember(requestId, output, rows);
      if (monitor.rows >= this.o.windowSamples) this.close(monitor, now, 'count');
    }
  }

  private drain(): void {
    try {
      this.absorbQueued();
    } catch (err) {
      this.o.log.error({ err }, 'drift monitor failed to absorb a batch');
    } finally {
      this.draining = false;
    }
  }

  /** Time windows and the scheduled report. */
  tick(): void {
    const now = this.o.now();
    const minSamples = this.o.drift?.minSamples ?? DEFAULT_DRIFT_OPTIONS.minSamples;
    for (const monitor of this.monitors.values()) {
      // A quiet device's window stays open until it holds enough rows for a verdict: being quiet is not a
      // reason to flip a verdict to "insufficient_data" (and back), or to lower the capture rate.
      if (now - monitor.windowStart >= this.o.windowMs && monitor.rows >= minSamples)
        this.close(monitor, now, 'time');
    }
    if (now - this.lastReport >= this.o.reportIntervalMs) {
      this.lastReport = now;
      for (const monitor of this.monitors.values()) this.report(monitor, 'schedule');
    }
  }

  private close(monitor: ModelMonitor, now: number, closedBy: 'count' | 'time'): void {
    const outcome = monitor.close(now, closedBy, this.o.drift ?? {});
    monitor.last = outcome;
    // Concept drift holds while windows keep seeing detections; a closed window without one clears it.
    const conceptCleared = monitor.conceptActive && !monitor.conceptInWindow;
    if (conceptCleared) monitor.conceptActive = false;
    monitor.conceptInWindow = false;
    if (outcome.verdict !== monitor.verdict) {
      this.o.log.info(
        {
          model: monitor.ref,
          from: monitor.verdict,
          to: outcome.verdict,
          samples: outcome.message.window?.samples,
        },
        'drift verdict changed',
      );
      monitor.verdict = outcome.verdict;
      monitor.verdictSince = now;
      this.updateDrifting(); // first: the report carries the capture rate now in force
      this.report(monitor, 'verdict_change');
    } else if (conceptCleared) {
      this.updateDrifting();
    }
  }

  private report(monitor: ModelMonitor, cause: DriftMessage['cause']): void {
    const base: Outcome['message'] = monitor.last?.message ?? {
      type: 'drift',
      model: monitor.ref,
      verdict: 'insufficient_data',
      verdictSince: monitor.verdictSince,
      window: null,
      driftedShare: 0,
      features: [],
      prediction: null,
      concept: monitor.conceptReport(),
      dropped: 0,
      captureRate: 0,
    };
    this.o.publish({
      ...base,
      v: PROTOCOL_VERSION,
      id: this.o.newId(),
      ts: Math.round(this.o.now()),
      cause,
      verdict: monitor.verdict,
      verdictSince: Math.round(monitor.verdictSince),
      concept: monitor.conceptReport(),
      dropped: monitor.dropped,
      captureRate: this.o.captureRate(),
    });
    this.counters.reports++;
    monitor.dropped = 0;
    monitor.conceptDrifted = false;
  }

  private updateDrifting(): void {
    const drifting = [...this.monitors.values()].some((m) => m.verdict === 'drift' || m.conceptActive);
    if (drifting === this.drifting) return;
    this.drifting = drifting;
    this.o.onDriftChange?.(drifting);
  }

  /** One monitor per active model that carries reference statistics; a new version starts afresh. */
  private sync(): void {
    const now = this.o.now();
    const active = new Set<string>();
    for (const model of this.host.all()) {
      active.add(model.name);
      const current = this.monitors.get(model.name);
      if (current?.model === model) continue;
      if (current && current.ref.version === model.version) {
        // The same version reloaded (rollback to it, restart of its session): keep its windows.
        current.model = model;
        continue;
      }
      if (this.rejected.has(model)) {
        this.monitors.delete(model.name);
        continue;
      }
      const parsed = ReferenceStatsSchema.safeParse(model.manifest.referenceStats);
      const width = model.manifest.inputs[0]?.shape.at(-1);
      if (!parsed.success || (typeof width === 'number' && width !== parsed.data.features.length)) {
        this.monitors.delete(model.name);
        this.rejected.add(model);
        this.counters.unmonitored++;
        this.o.log.info(
          { model: { name: model.name, version: model.version } },
          parsed.success
            ? 'drift monitoring off for this model: its input width does not match its reference statistics'
            : 'drift monitoring off for this model: its manifest carries no reference statistics',
        );
        continue;
      }
      this.monitors.set(model.name, new ModelMonitor(model, parsed.data, now, this.o.feedbackMemory));
    }
    for (const name of [...this.monitors.keys()]) if (!active.has(name)) this.monitors.delete(name);
    this.updateDrifting();
  }
}
