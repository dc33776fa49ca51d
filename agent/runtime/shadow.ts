/**
 * Shadow comparison on the device: a candidate model loaded beside the active one receives a sampled share of
 * live requests AFTER the active response is computed, through a bounded queue drained one request at a time,
 * and only while no active request is in flight. For latency, both models are timed on the mirrored input
 * in such quiet moments (one run each, alternating which goes first), so the comparison is like for like. The active path pays one random draw and, when sampled, an
 * array push; a full queue drops the mirror (counted), never delays the response. Under saturation there are
 * few moments with nothing in flight, so most mirrors are dropped: the share compared is reported per window
 * (`compared` vs `mirrored`), and the fleet's gates ask for a minimum number of comparisons.
 *
 * The candidate session keeps the profile's thread settings: onnxruntime-node runs a session synchronously on
 * the calling (main) thread, so fewer intra-op threads would only make each shadow run block the event loop
 * for longer.
 *
 * Agreement (the same rule the fleet's gate documents in ShadowStatsSchema): classifiers (last output
 * dimension > 1) agree on a row when the top-1 class is the same; regressors when every output is within
 * `1e-3 + 1e-2·|active|`. A request agrees when all its rows do.
 */
import { bucketOf, emptyBuckets } from '../../shared/histogram.js';
import type { ModelRef, ShadowStats } from '../../shared/protocol/messages.js';
import type { FeedTensor, LoadedModel, OutputTensor } from './ort.js';

export interface ShadowCandidate {
  model: ModelRef;
  loaded: LoadedModel;
  /** Share of the active model's requests mirrored, 0–100. */
  percent: number;
  /** The candidate's first output, compared with the active model's first output. */
  output: string;
}

interface Job {
  feeds: Record<string, FeedTensor>;
  activeOutput: OutputTensor;
  /** The active model's session, run again on the same input to time it beside the candidate. */
  activeSession: LoadedModel;
}

interface Entry {
  candidate: ShadowCandidate;
  /** The active version mirrored from (named in the stats; null until the first mirror). */
  active: ModelRef | null;
  queue: Job[];
  draining: boolean;
  /** Which model runs first on the next job (alternates, so neither always finds the caches warm). */
  candidateFirst: boolean;
  stats: Omit<ShadowStats, 'active' | 'candidate'>;
}

function emptyStats(): Entry['stats'] {
  return {
    mirrored: 0,
    compared: 0,
    agreed: 0,
    dropped: 0,
    errors: 0,
    activeLatencyBuckets: emptyBuckets(),
    candidateLatencyBuckets: emptyBuckets(),
  };
}

export class ShadowRunner {
  private readonly byName = new Map<string, Entry>();

  /** Active requests in flight (the inference API brackets each with enter/leave). */
  private active = 0;

  constructor(private readonly options: { capacity: number; random: () => number; now: () => number }) {}

  /** An active request started: shadow work waits until none is in flight. */
  enter(): void {
    this.active++;
  }

  leave(): void {
    this.active--;
  }

  /** Start shadowing `candidate` for its model name (replacing, and returning, any previous candidate). */
  set(candidate: ShadowCandidate): ShadowCandidate | undefined {
    const previous = this.byName.get(candidate.model.name);
    this.byName.set(candidate.model.name, {
      candidate,
      active: null,
      queue: [],
      draining: false,
      candidateFirst: true,
      stats: emptyStats(),
    });
    return previous?.candidate;
  }

  get(name: string): ShadowCandidate | undefined {
    return this.byName.get(name)?.candidate;
  }

  /** Stop shadowing `model` (if it is the candidate); returns it so the caller can activate or release it. */
  take(model: ModelRef): ShadowCandidate | undefined {
    const entry = this.byName.get(model.name);
    if (!entry || entry.candidate.model.version !== model.version) return undefined;
    this.byName.delete(model.name);
    entry.queue.length = 0;
    return entry.candidate;
  }

  /**
   * Called after the active model answered: maybe mirror the request to the candidate. Never throws, never
   * waits: one random draw and, when sampled, an array push.
   */
  offer(
    active: ModelRef,
    activeSession: LoadedModel,
    feeds: Record<string, FeedTensor>,
    outputs: Record<string, OutputTensor>,
    outputName: string,
  ): void {
    const entry = this.byName.get(active.name);
    if (!entry || entry.candidate.model.version === active.version) return;
    if (this.options.random() * 100 >= entry.candidate.percent) return;
    entry.stats.mirrored++;
    entry.active = active;
    const activeOutput = outputs[outputName];
    if (!activeOutput || entry.queue.length >= this.options.capacity) {
      entry.stats.dropped++;
      return;
    }
    entry.queue.push({ feeds, activeOutput, activeSession });
    if (!entry.draining) {
      entry.draining = true;
      setImmediate(() => void this.drain(entry));
    }
  }

  /** The window's aggregates per candidate (reset), for telemetry. */
  takeStats(): ShadowStats[] {
    const out: ShadowStats[] = [];
    for (const entry of this.byName.values()) {
      const s = entry.stats;
      entry.stats = emptyStats();
      // A window is reported when anything happened in it: mirrors all dropped, or compared from an earlier one.
      if (!entry.active || s.mirrored + s.compared + s.errors + s.dropped === 0) continue;
      out.push({ active: entry.active, candidate: entry.candidate.model, ...s });
    }
    return out;
  }

  /** Wait until every queue is empty (tests, benchmarks). */
  async idle(): Promise<void> {
    while ([...this.byName.values()].some((e) => e.draining)) await new Promise((r) => setImmediate(r));
  }

  private current(entry: Entry): boolean {
    return this.byName.get(entry.candidate.model.name) === entry;
  }

  /** Active work first: resolves at a moment with no active request in flight (the queue may fill and drop). */
  private async quiet(entry: Entry): Promise<void> {
    while (this.active > 0 && this.current(entry)) await new Promise((r) => setTimeout(r, 1));
  }

  /** One model's run on the job's input, timed; each run waits for its own quiet moment. */
  private async timed(
    entry: Entry,
    session: LoadedModel,
    feeds: Record<string, FeedTensor>,
  ): Promise<{ ms: number; out: Record<string, OutputTensor> }> {
    await this.quiet(entry);
    const started = this.options.now();
    const out = await session.run(feeds);
    return { ms: this.options.now() - started, out };
  }

  /**
   * Compare each queued request: the candidate's output against what the active model answered, and both
   * models' latency on the same input, each timed in a quiet moment. The active model's latency is measured
   * here rather than taken from the live request, which includes waiting for a batch under load: that would
   * make any candidate look fast next to it.
   */
  private async drain(entry: Entry): Promise<void> {
    const yieldToActive = () => new Promise((r) => setImmediate(r));
    try {
      while (entry.queue.length > 0 && this.current(entry)) {
        await this.quiet(entry);
        const job = entry.queue.shift();
        if (!job || !this.current(entry)) break;
        const candidateFirst = entry.candidateFirst;
        entry.candidateFirst = !candidateFirst;
        let activeMs: number | null = null;
        if (!candidateFirst) {
          activeMs = await this.timed(entry, job.activeSession, job.feeds).then(
            (r) => r.ms,
            () => null, // the active session was switched out meanwhile: no latency pair for this job
          );
          await yieldToActive();
        }
        let candidateMs: number;
        try {
          const { ms, out } = await this.timed(entry, entry.candidate.loaded, job.feeds);
          const output = out[entry.candidate.output];
          if (!output) throw new Error(`candidate has no output ${entry.candidate.output}`);
          candidateMs = ms;
          entry.stats.compared++;
          if (agrees(job.activeOutput, output)) entry.stats.agreed++;
        } catch {
          entry.stats.errors++;
          await yieldToActive();
          continue;
        }
        if (candidateFirst) {
          await yieldToActive();
          activeMs = await this.timed(entry, job.activeSession, job.feeds).then(
            (r) => r.ms,
            () => null,
          );
        }
        if (activeMs !== null) {
          entry.stats.activeLatencyBuckets[bucketOf(activeMs)]!++;
          entry.stats.candidateLatencyBuckets[bucketOf(candidateMs)]!++;
        }
        // Yield between jobs so active requests arriving meanwhile go first.
        await yieldToActive();
      }
    } finally {
      entry.draining = false;
    }
  }
}

/** Whether the candidate's output agrees with the active one's, row by row (see the module comment). */
export function agrees(active: OutputTensor, candidate: OutputTensor): boolean {
  const a = active.data;
  const c = candidate.data;
  if (a.length !== c.length || a.length === 0) return false;
  const k = active.dims.length > 1 ? Number(active.dims[active.dims.length - 1]) : 1;
  if (k > 1) {
    for (let row = 0; row < a.length; row += k) {
      if (argmax(a, row, k) !== argmax(c, row, k)) return false;
    }
    return true;
  }
  for (let i = 0; i < a.length; i++) {
    const x = Number(a[i]);
    if (!(Math.abs(x - Number(c[i])) <= 1e-3 + 1e-2 * Math.abs(x))) return false;
  }
  return true;
}

function argmax(values: ArrayLike<number | bigint | boolean>, offset: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (Number(values[offset + j]) > Number(values[offset + best])) best = j;
  return best;
}
