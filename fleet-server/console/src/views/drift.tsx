/**
 * Drift: for each monitored model, drift by version (devices drifting, share, the features that moved most),
 * the production version's drift over the last hour, and the retrain loop's latest decision — with the
 * approval an operator gives when the task's policy asks for one.
 */
import { useMemo } from 'preact/hooks';
import type { ModelDrift as DriftModel, TimelinePoint } from '../../../../shared/api/drift';
import { api } from '../api';
import { Chart } from '../chart';
import { Badge, ConfirmButton, Empty, fmt, href, Loading, Page, Time, useCan, useResource } from '../ui';

/** Drift reports come over MQTT and leave no event of their own: any event refreshes, at most every 2 s. */
const anyEvent = () => true;

export function DriftView() {
  const drift = useResource<{ models: DriftModel[] }>('/drift', anyEvent, 2000);
  return (
    <Page title="Drift">
      <Loading resource={drift}>
        {(d) =>
          d.models.length === 0 ? (
            <Empty>
              No drift reports yet. Devices report drift for models that carry reference statistics (trained
              by the fleet, or pushed with <code>--reference-stats</code>) once a window of requests closes.
            </Empty>
          ) : (
            d.models.map((m) => <ModelDrift key={m.model} model={m} />)
          )
        }
      </Loading>
    </Page>
  );
}

function ModelDrift(props: { model: DriftModel }) {
  const m = props.model;
  const canAct = useCan('operator');
  const watched = m.production ?? m.versions[0]?.version ?? null;
  return (
    <article class="card" aria-labelledby={`drift-${m.model}`}>
      <h2 id={`drift-${m.model}`}>
        <a href={href('models', m.model)}>{m.model}</a>{' '}
        <span class="muted">
          production {m.production ? `v${m.production}` : '—'}
          {m.task ? `, task ${m.task}` : ''}
        </span>
      </h2>
      <table>
        <caption>By version</caption>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Devices</th>
            <th scope="col">Drifting</th>
            <th scope="col">Share</th>
            <th scope="col">Prediction drift</th>
            <th scope="col">Concept drift</th>
            <th scope="col">Features that moved most (mean PSI)</th>
          </tr>
        </thead>
        <tbody>
          {m.versions.map((v) => (
            <tr key={v.version}>
              <td>v{v.version}</td>
              <td>{fmt(v.devices)}</td>
              <td>
                {v.drifting > 0 ? <Badge value="drift" /> : null} {fmt(v.drifting)}
              </td>
              <td>{v.share === null ? '—' : `${fmt(v.share * 100)}%`}</td>
              <td>{fmt(v.predictionDrifting)}</td>
              <td>{fmt(v.conceptDrifting)}</td>
              <td>
                {[...v.features]
                  .sort((a, b) => b.meanPsi - a.meanPsi)
                  .slice(0, 3)
                  .map((f) => `${f.name} ${fmt(f.meanPsi)}`)
                  .join(', ') || '—'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {watched !== null ? <Timeline model={m.model} version={watched} /> : null}
      <h3>Retraining</h3>
      {!m.retrain ? (
        <Empty>
          {m.task
            ? 'No retrain yet: the loop retrains when the task’s policy says drift warrants it.'
            : 'No task owns this model, so it is not retrained automatically.'}
        </Empty>
      ) : (
        <div>
          <p>
            <Badge value={m.retrain.status} /> {m.retrain.trigger.kind} by {m.retrain.trigger.actor},{' '}
            <Time at={m.retrain.createdAt} />: {m.retrain.trigger.reason}
          </p>
          {m.retrain.evaluation ? <p>{m.retrain.evaluation.detail}</p> : null}
          {m.retrain.error ? (
            <p class="error">
              {m.retrain.error.code}: {m.retrain.error.message}
            </p>
          ) : null}
          <p>
            {m.retrain.run ? <a href={href('training', m.retrain.run)}>training run</a> : null}
            {m.retrain.version ? (
              <>
                {' · '}
                <a href={href('models', m.model, m.retrain.version)}>v{m.retrain.version}</a>
              </>
            ) : null}
            {m.retrain.rollout ? (
              <>
                {' · '}
                <a href={href('rollouts', m.retrain.rollout)}>its rollout</a>
              </>
            ) : null}
          </p>
          {canAct && m.retrain.status === 'awaiting_approval' ? (
            <ConfirmButton
              label="Approve"
              title={`Approve retrained ${m.model} v${m.retrain.version}?`}
              message={<p>It starts the task’s canary rollout of the retrained version.</p>}
              onConfirm={() =>
                api(`/retrains/${encodeURIComponent(m.retrain!.id)}/approve`, { method: 'POST' })
              }
            />
          ) : null}
        </div>
      )}
    </article>
  );
}

function Timeline(props: { model: string; version: number }) {
  const timeline = useResource<{ points: TimelinePoint[] }>(
    `/drift/${encodeURIComponent(props.model)}/versions/${props.version}/timeline?sinceS=3600&bucketS=60`,
    anyEvent,
    5000,
  );
  const points = timeline.data?.points ?? [];
  const x = useMemo(() => points.map((p) => p.at / 1000), [points]);
  const series = useMemo(() => {
    const mean = new Map<string, number>();
    for (const p of points) for (const [k, v] of Object.entries(p.psi)) mean.set(k, (mean.get(k) ?? 0) + v);
    const top = [...mean.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([k]) => k);
    return [
      { label: 'drifting share', values: points.map((p) => p.share) },
      ...top.map((name) => ({ label: `PSI ${name}`, values: points.map((p) => p.psi[name] ?? null) })),
    ];
  }, [points]);
  if (points.length === 0) return <Empty>v{props.version}: no drift reports in the last hour.</Empty>;
  return <Chart title={`v${props.version} drift, last hour`} x={x} series={series} />;
}
