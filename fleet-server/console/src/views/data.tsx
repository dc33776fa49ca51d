/** Data and training: tasks with ingestion and rejection counts, snapshots, training runs with live progress. */
import { useMemo } from 'preact/hooks';
import type { TrainingRun as Run, Snapshot, TaskWithStats as Task } from '../../../../shared/api/pool';
import { formatBytes } from '../../../../shared/format';
import { Chart } from '../chart';
import { Badge, Empty, fmt, href, Loading, Page, Time, useResource } from '../ui';

const runChange = (e: { type: string; kind?: string; target?: string }) =>
  (e.type === 'update' && e.kind === 'training-run') ||
  (e.type === 'change' && /^(tasks|training-runs|snapshots)/.test(e.target ?? ''));

export function DataPage() {
  const tasks = useResource<{ tasks: Task[] }>('/tasks', runChange);
  const rejections = useResource<{
    rejections: { task: string; source: string; reason: string; count: number }[];
  }>('/pool/rejections', runChange);
  const runs = useResource<{ runs: Run[] }>('/training-runs', runChange);
  return (
    <Page title="Data and training">
      <section aria-labelledby="tasks-title">
        <h2 id="tasks-title">Tasks</h2>
        <Loading resource={tasks}>
          {(t) =>
            t.tasks.length === 0 ? (
              <Empty>
                No tasks yet. A task names a model and its features; devices then send samples to it. Create
                one with <code>edgefleet data task create</code>.
              </Empty>
            ) : (
              t.tasks.map((task) => <TaskCard key={task.name} name={task.name} />)
            )
          }
        </Loading>
      </section>
      <section aria-labelledby="rejections-title">
        <h2 id="rejections-title">Rejected samples</h2>
        <Loading resource={rejections}>
          {(r) =>
            r.rejections.length === 0 ? (
              <Empty>Nothing rejected: every sample sent so far was accepted.</Empty>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th scope="col">Task</th>
                    <th scope="col">Source</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Count</th>
                  </tr>
                </thead>
                <tbody>
                  {r.rejections.map((x) => (
                    <tr key={`${x.task}/${x.source}/${x.reason}`}>
                      <td>{x.task}</td>
                      <td>{x.source}</td>
                      <td>{x.reason}</td>
                      <td>{fmt(x.count)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Loading>
      </section>
      <section aria-labelledby="runs-title">
        <h2 id="runs-title">Training runs</h2>
        <Loading resource={runs}>{(r) => <RunTable runs={r.runs} />}</Loading>
      </section>
    </Page>
  );
}

function TaskCard(props: { name: string }) {
  const name = encodeURIComponent(props.name);
  const task = useResource<Task>(`/tasks/${name}`, runChange);
  const snapshots = useResource<{ snapshots: Snapshot[] }>(`/tasks/${name}/snapshots`, runChange);
  return (
    <article class="card" aria-labelledby={`task-${props.name}`}>
      <Loading resource={task}>
        {(t) => {
          const accepted = Object.values(t.stats?.acceptedBySource ?? {}).reduce((a, b) => a + b, 0);
          const rejected = Object.values(t.stats?.rejectedBySource ?? {})
            .flatMap((r) => Object.values(r))
            .reduce((a, b) => a + b, 0);
          return (
            <>
              <h3 id={`task-${props.name}`}>
                {t.name} <span class="muted">→ model {t.model}</span>
              </h3>
              <p>
                {fmt(t.stats?.samples ?? 0)} samples in the pool ({fmt(t.stats?.labeled ?? 0)} labeled);{' '}
                {fmt(accepted)} accepted and {fmt(rejected)} rejected from{' '}
                {Object.keys(t.stats?.acceptedBySource ?? {}).length} sources.
              </p>
            </>
          );
        }}
      </Loading>
      <Loading resource={snapshots}>
        {(s) =>
          s.snapshots.length === 0 ? (
            <Empty>No snapshots yet.</Empty>
          ) : (
            <table>
              <caption>Snapshots</caption>
              <thead>
                <tr>
                  <th scope="col">Snapshot</th>
                  <th scope="col">Samples</th>
                  <th scope="col">Labeled</th>
                  <th scope="col">Size</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {s.snapshots.map((x) => (
                  <tr key={x.id}>
                    <td>
                      <code>{x.id}</code>
                    </td>
                    <td>{fmt(x.count)}</td>
                    <td>{fmt(x.labeled)}</td>
                    <td>{formatBytes(x.bytes)}</td>
                    <td>
                      <Time at={x.createdAt} /> by {x.createdBy}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loading>
    </article>
  );
}

function RunTable(props: { runs: Run[] }) {
  if (props.runs.length === 0) return <Empty>No training runs yet.</Empty>;
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">Run</th>
          <th scope="col">Task</th>
          <th scope="col">Status</th>
          <th scope="col">Progress</th>
          <th scope="col">Result</th>
          <th scope="col">Created</th>
        </tr>
      </thead>
      <tbody>
        {props.runs.map((r) => (
          <tr key={r.id}>
            <td>
              <a href={href('training', r.id)}>{r.id}</a>
            </td>
            <td>{r.task}</td>
            <td>
              <Badge value={r.status} />
            </td>
            <td>
              {r.progress ? (
                <progress max={r.progress.epochs} value={r.progress.epoch} aria-label={`run ${r.id} epochs`}>
                  {r.progress.epoch}/{r.progress.epochs}
                </progress>
              ) : (
                '—'
              )}
            </td>
            <td>{r.result ? `${r.model} v${r.result.version}` : '—'}</td>
            <td>
              <Time at={r.createdAt} /> by {r.createdBy}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function TrainingRunView(props: { id: string }) {
  const run = useResource<Run>(
    `/training-runs/${encodeURIComponent(props.id)}`,
    (e) => e.type === 'update' && e.kind === 'training-run' && e.id === props.id,
  );
  return (
    <Page title={`Training run ${props.id}`}>
      <Loading resource={run}>{(r) => <RunDetail run={r} />}</Loading>
    </Page>
  );
}

function RunDetail(props: { run: Run }) {
  const r = props.run;
  const x = useMemo(() => r.history.map((h) => h.epoch), [r.history]);
  const series = useMemo(
    () => [
      { label: 'loss', values: r.history.map((h) => h.loss) },
      { label: 'validation loss', values: r.history.map((h) => h.holdoutLoss) },
    ],
    [r.history],
  );
  return (
    <>
      <dl class="facts">
        <dt>Status</dt>
        <dd>
          <Badge value={r.status} /> {r.error ? `${r.error.code}: ${r.error.message}` : ''}
        </dd>
        <dt>Task</dt>
        <dd>
          {r.task} → {r.model}, snapshot <code>{r.snapshot}</code>
        </dd>
        <dt>Backend</dt>
        <dd>{r.backend ?? '—'}</dd>
        <dt>Progress</dt>
        <dd>{r.progress ? `epoch ${r.progress.epoch} of ${r.progress.epochs}` : '—'}</dd>
        <dt>Result</dt>
        <dd>
          {r.result ? (
            <a href={href('models', r.model, r.result.version)}>
              {r.model} v{r.result.version}
            </a>
          ) : (
            '—'
          )}
        </dd>
        <dt>Created</dt>
        <dd>
          <Time at={r.createdAt} /> by {r.createdBy}
        </dd>
      </dl>
      {r.history.length === 0 ? (
        <Empty>No epoch finished yet.</Empty>
      ) : (
        <Chart title="Loss per epoch" x={x} series={series} time={false} />
      )}
    </>
  );
}
