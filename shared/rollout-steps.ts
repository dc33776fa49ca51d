/**
 * A rollout step as the wire carries it, and the one way to say it in words (the fleet's events, the CLI and
 * the console all use `describeStep`). Zod-free on purpose: the console imports it without bundling the spec
 * schemas (shared/api/rollouts.ts validates steps; its `Step` is assignable to `StepShape`).
 */
export type StepShape =
  | { setPercent: number }
  | { pause: { durationS?: number | undefined } }
  | { analysis: { windowS: number; intervalS: number; gates?: unknown } }
  | {
      shadow: {
        percent: number;
        cohortPercent: number;
        durationS: number;
        minAgreement?: number;
        intervalS?: number;
        gates?: unknown;
      };
    };

export function describeStep(step: StepShape): string {
  if ('setPercent' in step) return `setPercent ${step.setPercent}`;
  if ('pause' in step)
    return step.pause.durationS ? `pause ${step.pause.durationS} s` : 'pause until resumed';
  if ('shadow' in step) {
    const on = step.shadow.cohortPercent < 100 ? ` on ${step.shadow.cohortPercent}% of targets` : '';
    return `shadow ${step.shadow.percent}%${on} for ${step.shadow.durationS} s`;
  }
  return `analysis ${step.analysis.windowS} s`;
}
