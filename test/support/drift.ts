/** Drift reports as devices send them (protocol `drift` messages), for fleet-side tests. */
import type { DriftMessage, DriftVerdictName } from '../../shared/protocol/messages.js';

/** A report over features `a` and `b` of model `clf` (or `options.model`) at `version`. */
export function driftReport(
  version: number,
  verdict: DriftVerdictName,
  options: {
    ts?: number;
    since?: number;
    drifted?: string[];
    concept?: boolean;
    psi?: number;
    model?: string;
  } = {},
): DriftMessage {
  const features = ['a', 'b'].map((name) => ({
    name,
    ksStatistic: 0.1,
    pValue: 0.5,
    adjustedPValue: 0.5,
    psi: options.psi ?? 0.01,
    jensenShannon: 0.01,
    drifted: options.drifted?.includes(name) ?? false,
  }));
  return {
    v: 1,
    type: 'drift',
    id: crypto.randomUUID(),
    ts: options.ts ?? 1_000_000,
    model: { name: options.model ?? 'clf', version },
    cause: 'verdict_change',
    verdict,
    verdictSince: options.since ?? options.ts ?? 1_000_000,
    window: { startedAt: 0, endedAt: 1, samples: 500, closedBy: 'count' },
    driftedShare: (options.drifted?.length ?? 0) / 2,
    features: verdict === 'insufficient_data' ? [] : features,
    prediction: null,
    concept: {
      labeled: 0,
      meanLoss: null,
      drifted: options.concept ?? false,
      detections: { pageHinkley: 0, adwin: 0 },
    },
    dropped: 0,
    captureRate: 0.01,
  };
}
