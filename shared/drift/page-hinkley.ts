/**
 * Page–Hinkley test for concept drift on a stream of per-request losses: it signals when the mean loss has
 * risen (only an increase; a model getting better is not an alarm). Pure, fixed memory.
 *
 * Definition (Page 1954; the form scikit-multiflow and river use): with x̄ₙ the mean of the n values since
 * the last reset (xₙ included),
 *   PHₙ = max(0, α·PHₙ₋₁ + xₙ − x̄ₙ − δ),  PH₀ = 0,
 * and drift is detected at the first n ≥ `minInstances` with PHₙ > `threshold`. With α = 1 this is exactly
 * mₙ − min_{k≤n} mₖ for the cumulative deviation mₙ = Σ (xₜ − x̄ₜ − δ) (m₀ = 0), the textbook statistic.
 *
 * Options, against scikit-multiflow's / river's `PageHinkley(min_instances=30, delta=0.005, threshold=50,
 * alpha=1 - 0.0001)`: the same `minInstances`, `delta` and `threshold`; `alpha` (their forgetting factor)
 * defaults to 1 here, no fading: the test is then the plain CUSUM whose false-alarm behaviour is understood,
 * and a slow, sustained rise in loss (the usual shape of concept drift) keeps counting instead of being
 * forgotten. `threshold` is in units of the loss: with a 0–1 loss, 50 means "about 50 more errors than the
 * running mean explains, net of δ per request". Small differences from those libraries: `minInstances` counts
 * the value just added (theirs start counting at 1 and allow detection one value early), and the comparison
 * is strict (`>`, as scikit-multiflow; river uses `≥`).
 *
 * Reset: `update` returns true at the value where drift is detected and keeps that state readable (`n`,
 * `mean`, `statistic`) until the next `update`, which starts afresh from that value — the libraries'
 * behaviour.
 */

export interface PageHinkleyOptions {
  /** Magnitude of change tolerated per value, in loss units. */
  delta: number;
  /** λ: the PH value above which drift is declared. */
  threshold: number;
  /** No detection before this many values since the last reset. */
  minInstances: number;
  /** Forgetting factor on the accumulated statistic, in (0, 1]; 1 = none. */
  alpha: number;
}

export const DEFAULT_PAGE_HINKLEY_OPTIONS: PageHinkleyOptions = {
  delta: 0.005,
  threshold: 50,
  minInstances: 30,
  alpha: 1,
};

export class PageHinkley {
  readonly options: PageHinkleyOptions;
  private count = 0;
  private runningMean = 0;
  private ph = 0;
  private detected = 0;
  private drifted = false;

  constructor(options: Partial<PageHinkleyOptions> = {}) {
    this.options = { ...DEFAULT_PAGE_HINKLEY_OPTIONS, ...options };
    const { alpha, threshold, delta } = this.options;
    if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`alpha must be in (0, 1], got ${alpha}`);
    if (!(threshold > 0) || !(delta >= 0))
      throw new RangeError(`threshold must be > 0 and delta ≥ 0, got ${threshold} and ${delta}`);
  }

  /** Values since the last reset. */
  get n(): number {
    return this.count;
  }

  /** Their mean. */
  get mean(): number {
    return this.runningMean;
  }

  /** The current PH value. */
  get statistic(): number {
    return this.ph;
  }

  /** Detections since construction. */
  get detections(): number {
    return this.detected;
  }

  /** Add one value; true when drift is detected at this value. Non-finite values are ignored. */
  update(x: number): boolean {
    if (!Number.isFinite(x)) return false;
    if (this.drifted) this.reset();
    const { alpha, delta, minInstances, threshold } = this.options;
    this.count++;
    this.runningMean += (x - this.runningMean) / this.count;
    this.ph = Math.max(0, alpha * this.ph + x - this.runningMean - delta);
    this.drifted = this.count >= minInstances && this.ph > threshold;
    if (this.drifted) this.detected++;
    return this.drifted;
  }

  /** Forget the values seen (not the detection count). */
  reset(): void {
    this.count = 0;
    this.runningMean = 0;
    this.ph = 0;
    this.drifted = false;
  }
}
