/** Models: every model, its versions with aliases and metrics, and one version's lineage as a graph. */

import type {
  Lineage,
  ModelSummary,
  ModelVersionBase,
  ModelVersion as VersionWithAliases,
} from '../../../../shared/api/models';
import { Badge, Empty, fmt, href, Loading, Page, Time, useResource } from '../ui';

/** A version as listed (no aliases) or as read alone (with the aliases pointing at it). */
type VersionRecord = ModelVersionBase & Partial<Pick<VersionWithAliases, 'aliases'>>;

const modelChange = (e: { type: string; target?: string; kind?: string }) =>
  e.type === 'change' && ((e.target ?? '').startsWith('models') || (e.target ?? '').startsWith('rollouts'));

export function ModelsView() {
  const models = useResource<{ models: ModelSummary[] }>('/models', modelChange);
  return (
    <Page title="Models">
      <Loading resource={models}>
        {(m) =>
          m.models.length === 0 ? (
            <Empty>
              No models yet. Train one from a task's snapshot, or push an ONNX file with{' '}
              <code>edgefleet models push</code>.
            </Empty>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Versions</th>
                  <th scope="col">Latest</th>
                  <th scope="col">Production</th>
                  <th scope="col">Candidate</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {m.models.map((x) => (
                  <tr key={x.name}>
                    <td>
                      <a href={href('models', x.name)}>{x.name}</a>
                    </td>
                    <td>{x.versionCount}</td>
                    <td>v{x.latestVersion}</td>
                    <td>{x.production ? `v${x.production}` : '—'}</td>
                    <td>{x.candidate ? `v${x.candidate}` : '—'}</td>
                    <td>
                      <Time at={x.updatedAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loading>
    </Page>
  );
}

export function ModelView(props: { name: string }) {
  const name = encodeURIComponent(props.name);
  const versions = useResource<{ versions: VersionRecord[] }>(`/models/${name}/versions`, modelChange);
  const aliases = useResource<{
    aliases: Record<string, { version: number; movedAt?: string; by?: string }>;
  }>(`/models/${name}/aliases`, modelChange);
  return (
    <Page title={`Model ${props.name}`}>
      <Loading resource={aliases}>
        {(a) => (
          <p>
            Aliases:{' '}
            {Object.keys(a.aliases).length === 0
              ? 'none'
              : Object.entries(a.aliases).map(([alias, v]) => (
                  <span key={alias} class="tag">
                    {alias} → v{v.version}
                  </span>
                ))}
          </p>
        )}
      </Loading>
      <Loading resource={versions}>
        {(v) => (
          <table>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Origin</th>
                <th scope="col">Metrics (holdout)</th>
                <th scope="col">Size</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {[...v.versions].reverse().map((x) => (
                <tr key={x.version}>
                  <td>
                    <a href={href('models', x.name, x.version)}>v{x.version}</a>
                  </td>
                  <td>{x.lineage ? `trained (${x.lineage.task})` : 'pushed'}</td>
                  <td>
                    <Metrics metrics={x.lineage?.metrics} />
                  </td>
                  <td>{fmt(x.artifact.size)} B</td>
                  <td>
                    <Time at={x.createdAt} /> by {x.createdBy}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loading>
    </Page>
  );
}

function Metrics(props: { metrics: Record<string, number> | undefined }) {
  const entries = Object.entries(props.metrics ?? {});
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <span>
      {entries.map(([k, v]) => (
        <span key={k} class="metric">
          {k} {fmt(v)}
        </span>
      ))}
    </span>
  );
}

export function VersionView(props: { name: string; version: string }) {
  const base = `/models/${encodeURIComponent(props.name)}/versions/${encodeURIComponent(props.version)}`;
  const record = useResource<VersionRecord>(base, modelChange);
  const lineage = useResource<Lineage>(`${base}/lineage`, modelChange);
  return (
    <Page title={`${props.name} v${props.version}`}>
      <Loading resource={record}>
        {(r) => (
          <dl class="facts">
            <dt>Aliases</dt>
            <dd>{r.aliases?.length ? r.aliases.join(', ') : 'none'}</dd>
            <dt>Artifact</dt>
            <dd>
              <code>{r.artifact.sha256.slice(0, 16)}…</code> {fmt(r.artifact.size)} bytes, signed
            </dd>
            <dt>Metrics</dt>
            <dd>
              <Metrics metrics={r.lineage?.metrics} />
            </dd>
            <dt>Created</dt>
            <dd>
              <Time at={r.createdAt} /> by {r.createdBy}
            </dd>
          </dl>
        )}
      </Loading>
      <section aria-labelledby="lineage-title">
        <h2 id="lineage-title">Lineage</h2>
        <Loading resource={lineage}>
          {(l) => <LineageGraph lineage={l} name={props.name} version={props.version} />}
        </Loading>
      </section>
    </Page>
  );
}

/** snapshot → run → version → rollouts, as columns joined by arrows (an ordered list for assistive tech). */
function LineageGraph(props: { lineage: Lineage; name: string; version: string }) {
  const l = props.lineage;
  return (
    <ol class="lineage" aria-label="Lineage, from data to rollouts">
      <li class="node">
        <h3>Data</h3>
        {l.snapshot ? (
          <>
            <p>
              snapshot <code>{l.snapshot.id}</code>
            </p>
            <p class="muted">
              {fmt(l.snapshot.count)} samples, {fmt(l.snapshot.labeled)} labeled, from {l.sources.length}{' '}
              sources
            </p>
          </>
        ) : (
          <p class="muted">pushed file: no snapshot</p>
        )}
      </li>
      <li class="node">
        <h3>Training run</h3>
        {l.run ? (
          <>
            <p>
              <a href={href('training', l.run.id)}>{l.run.id}</a> <Badge value={l.run.status} />
            </p>
            <p class="muted">backend {l.run.backend ?? '—'}</p>
          </>
        ) : (
          <p class="muted">not trained by the fleet</p>
        )}
      </li>
      <li class="node current">
        <h3>Version</h3>
        <p>
          {props.name} v{props.version}
        </p>
        <p class="muted">{l.version.aliases.length ? l.version.aliases.join(', ') : 'no alias'}</p>
      </li>
      <li class="node">
        <h3>Rollouts</h3>
        {l.rollouts.length === 0 ? (
          <p class="muted">not rolled out yet</p>
        ) : (
          <ul class="plain">
            {l.rollouts.map((r) => (
              <li key={r.id}>
                <a href={href('rollouts', r.id)}>{r.id}</a> <Badge value={r.phase} />
              </li>
            ))}
          </ul>
        )}
      </li>
    </ol>
  );
}
