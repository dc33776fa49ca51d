/**
 * The champion/challenger rule, pure: the challenger wins when it beats the champion by the policy's margin on
 * the primary metric (accuracy for classifiers, RMSE for regressors) — on the holdout rows captured since the
 * drift began when there are enough of them, else on the whole holdout — or when there is no comparable
 * champion. The detail says which, in words, for the record and the audit trail.
 */
import type { Metrics } from '../training/metrics.js';
import type { Evaluation, RetrainPolicy } from './record.js';

/** Challenger against champion on the primary metric, on the recent holdout when it has enough rows. */
export function evaluate(
  result: {
    version: number;
    metrics: Metrics;
    champion: {
      version: number;
      metrics: Metrics | null;
      reason: string | null;
      recentMetrics?: Metrics | null;
    } | null;
    recent?: { rows: number; metrics: Metrics } | null;
  },
  policy: Pick<RetrainPolicy, 'margin' | 'minRecentRows'>,
): Evaluation {
  const metric = result.metrics.kind === 'classification' ? 'accuracy' : 'rmse';
  const value = (m: Metrics): number => (m.kind === 'classification' ? m.accuracy : m.rmse);
  const useRecent = result.recent != null && result.recent.rows >= policy.minRecentRows;
  const challenger = value(useRecent ? result.recent!.metrics : result.metrics);
  const championMetrics = useRecent
    ? (result.champion?.recentMetrics ?? null)
    : (result.champion?.metrics ?? null);
  const champion = championMetrics ? value(championMetrics) : null;
  const on = useRecent ? 'recent_holdout' : 'holdout';
  const rows = useRecent ? result.recent!.rows : result.metrics.rows;
  const where = `${on === 'recent_holdout' ? 'recent holdout' : 'holdout'} (${rows} rows)`;
  const fmt = (x: number) => x.toFixed(4);
  if (champion === null) {
    return {
      metric,
      on,
      rows,
      challenger,
      champion: null,
      championVersion: result.champion?.version ?? null,
      margin: policy.margin,
      won: true,
      detail: `no comparable champion (${result.champion?.reason ?? 'none in production'}); challenger ${metric} ${fmt(challenger)} on the ${where}`,
    };
  }
  const gain = metric === 'accuracy' ? challenger - champion : champion - challenger;
  const won = gain >= policy.margin;
  return {
    metric,
    on,
    rows,
    challenger,
    champion,
    championVersion: result.champion!.version,
    margin: policy.margin,
    won,
    detail: `challenger v${result.version} ${metric} ${fmt(challenger)} vs champion v${result.champion!.version} ${fmt(champion)} on the ${where}: ${won ? 'wins' : 'does not win'} by the margin ${policy.margin}`,
  };
}
