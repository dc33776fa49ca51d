/**
 * Devices: a server-side paged list (keyset: the fleet never sends more than one page, so 10,000 devices
 * cost what 100 do) with search and filters kept in the URL; and one device's page: its models, telemetry
 * charts, update history with reasons, and drift per feature.
 */
import { useMemo, useState } from 'preact/hooks';
import type { TelemetryPoint, DeviceUpdate as UpdateEntry } from '../../../../shared/api/console';
import type { Device } from '../../../../shared/api/devices';
import type { DeviceDrift as DeviceDriftReport } from '../../../../shared/api/drift';
import { ApiError } from '../api';
import { Chart } from '../chart';
import { Badge, Empty, fmt, href, Loading, Page, Tags, Time, useResource } from '../ui';

/** A device as the fleet serves it (the wire contract's). */
export type DeviceView = Device;

const PAGE_SIZE = 50;

function hashQuery(): URLSearchParams {
  const q = location.hash.indexOf('?');
  return new URLSearchParams(q >= 0 ? location.hash.slice(q + 1) : '');
}

interface Filters {
  q: string;
  status: string;
  tag: string;
  profile: string;
  model: string;
}

export function DevicesView() {
  const initial = hashQuery();
  const [filters, setFilters] = useState<Filters>({
    q: initial.get('q') ?? '',
    status: initial.get('status') ?? '',
    tag: initial.get('tag') ?? '',
    profile: initial.get('profile') ?? '',
    model: initial.get('model') ?? '',
  });
  const [draft, setDraft] = useState(filters);
  // Cursors of the pages before this one, for "Previous".
  const [cursors, setCursors] = useState<string[]>([]);
  const after = cursors.at(-1);
  const path = useMemo(() => {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const [key, value] of Object.entries(filters)) if (value) params.set(key, value);
    if (after) params.set('after', after);
    return `/devices?${params}`;
  }, [filters, after]);
  const page = useResource<{ devices: DeviceView[]; next: string | null }>(
    path,
    (e) => e.type === 'update' && e.kind === 'device',
  );

  const apply = (e: Event) => {
    e.preventDefault();
    setFilters(draft);
    setCursors([]);
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(draft)) if (value) params.set(key, value);
    history.replaceState(null, '', `#/devices${params.size ? `?${params}` : ''}`);
  };

  return (
    <Page title="Devices">
      <form class="filters" onSubmit={apply} aria-label="Filter devices">
        <label>
          Search id
          <input
            type="search"
            value={draft.q}
            onInput={(e) => setDraft({ ...draft, q: e.currentTarget.value })}
            placeholder="part of a device id"
          />
        </label>
        <label>
          Status
          <select
            value={draft.status}
            onChange={(e) => setDraft({ ...draft, status: e.currentTarget.value })}
          >
            <option value="">any</option>
            <option value="online">online</option>
            <option value="offline">offline</option>
          </select>
        </label>
        <label>
          Tag
          <input
            value={draft.tag}
            onInput={(e) => setDraft({ ...draft, tag: e.currentTarget.value })}
            placeholder="key=value"
          />
        </label>
        <label>
          Profile
          <input
            value={draft.profile}
            onInput={(e) => setDraft({ ...draft, profile: e.currentTarget.value })}
            placeholder="x86_64-cpu"
          />
        </label>
        <label>
          Model version
          <input
            value={draft.model}
            onInput={(e) => setDraft({ ...draft, model: e.currentTarget.value })}
            placeholder="name or name@version"
          />
        </label>
        <button type="submit" class="primary">
          Apply filters
        </button>
      </form>
      <Loading resource={page}>
        {(p) =>
          p.devices.length === 0 ? (
            <Empty>
              No devices match. Enroll one with <code>edgefleet-agent enroll --server … --token …</code> (an
              enrollment token comes from <code>edgefleet devices enroll-token</code>).
            </Empty>
          ) : (
            <>
              <table>
                <caption class="visually-hidden">Devices, page {cursors.length + 1}</caption>
                <thead>
                  <tr>
                    <th scope="col">Device</th>
                    <th scope="col">Status</th>
                    <th scope="col">Profile</th>
                    <th scope="col">Models</th>
                    <th scope="col">Tags</th>
                    <th scope="col">Last seen</th>
                  </tr>
                </thead>
                <tbody>
                  {p.devices.map((d) => (
                    <tr key={d.id}>
                      <td>
                        <a href={href('devices', d.id)}>{d.id}</a>
                      </td>
                      <td>
                        <Badge value={d.status} />
                      </td>
                      <td>{d.profile}</td>
                      <td>
                        {d.models.length === 0
                          ? '—'
                          : d.models.map((m) => `${m.name} v${m.version}`).join(', ')}
                      </td>
                      <td>
                        <Tags tags={d.tags} />
                      </td>
                      <td>
                        <Time at={d.lastSeen} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <nav class="pager" aria-label="Device pages">
                <button
                  type="button"
                  disabled={cursors.length === 0}
                  onClick={() => setCursors(cursors.slice(0, -1))}
                >
                  Previous page
                </button>
                <span>Page {cursors.length + 1}</span>
                <button
                  type="button"
                  disabled={!p.next}
                  onClick={() => p.next && setCursors([...cursors, p.next])}
                >
                  Next page
                </button>
              </nav>
            </>
          )
        }
      </Loading>
    </Page>
  );
}

export function DeviceView(props: { id: string }) {
  const id = encodeURIComponent(props.id);
  const isThis = (e: { type: string; kind?: string; id?: string; target?: string }) =>
    (e.type === 'update' && e.kind === 'device' && e.id === props.id) ||
    (e.type === 'update' && e.kind === 'rollout');
  const device = useResource<DeviceView>(`/devices/${id}`, isThis);
  const telemetry = useResource<{ windows: TelemetryPoint[] }>(`/devices/${id}/telemetry`, isThis);
  const updates = useResource<{ updates: UpdateEntry[] }>(`/devices/${id}/updates`, isThis);
  return (
    <Page title={`Device ${props.id}`}>
      <Loading resource={device}>
        {(d) => (
          <>
            <dl class="facts">
              <dt>Status</dt>
              <dd>
                <Badge value={d.status} /> last seen <Time at={d.lastSeen} />
              </dd>
              <dt>Profile</dt>
              <dd>{d.profile}</dd>
              <dt>Agent</dt>
              <dd>{d.agentVersion ?? '—'}</dd>
              <dt>Enrolled</dt>
              <dd>
                <Time at={d.enrolledAt} />
              </dd>
              <dt>Tags</dt>
              <dd>
                <Tags tags={d.tags} />
              </dd>
              <dt>Models</dt>
              <dd>
                {d.models.length === 0
                  ? 'none yet'
                  : d.models.map((m) => (
                      <span key={m.name} class="model-ref">
                        <a href={href('models', m.name, m.version)}>
                          {m.name} v{m.version}
                        </a>
                        {m.executionProvider ? ` on ${m.executionProvider}` : ''}
                        {m.providersSkipped?.length ? (
                          <span class="muted">
                            {' '}
                            (not on {m.providersSkipped.map((p) => `${p.provider}: ${p.reason}`).join('; ')})
                          </span>
                        ) : null}{' '}
                      </span>
                    ))}
              </dd>
            </dl>
            <section aria-labelledby="telemetry-title">
              <h2 id="telemetry-title">Telemetry, last hour</h2>
              <Loading resource={telemetry}>{(t) => <TelemetryCharts windows={t.windows} />}</Loading>
            </section>
            <section aria-labelledby="updates-title">
              <h2 id="updates-title">Update history</h2>
              <Loading resource={updates}>{(u) => <UpdateHistory updates={u.updates} />}</Loading>
            </section>
            <section aria-labelledby="drift-title">
              <h2 id="drift-title">Drift per feature</h2>
              {d.models.length === 0 ? (
                <Empty>No model runs here, so there is no drift to show.</Empty>
              ) : (
                d.models.map((m) => <DeviceDrift key={m.name} deviceId={d.id} model={m.name} />)
              )}
            </section>
          </>
        )}
      </Loading>
    </Page>
  );
}

function TelemetryCharts(props: { windows: TelemetryPoint[] }) {
  const w = props.windows;
  const x = useMemo(() => w.map((p) => new Date(p.at).getTime() / 1000), [w]);
  const series = useMemo(
    () => ({
      latency: [
        { label: 'p50 ms', values: w.map((p) => p.p50Ms) },
        { label: 'p99 ms', values: w.map((p) => p.p99Ms) },
      ],
      throughput: [{ label: 'requests/s', values: w.map((p) => p.rps) }],
      errors: [{ label: 'errors', values: w.map((p) => p.errors) }],
      cpu: [
        { label: 'agent CPU %', values: w.map((p) => p.cpuPercent) },
        { label: 'load avg', values: w.map((p) => p.loadAvg1) },
      ],
      memory: [
        { label: 'RSS MiB', values: w.map((p) => (p.rssBytes === null ? null : p.rssBytes / 2 ** 20)) },
        {
          label: 'heap MiB',
          values: w.map((p) => (p.heapUsedBytes === null ? null : p.heapUsedBytes / 2 ** 20)),
        },
      ],
      free: [
        {
          label: 'free MiB',
          values: w.map((p) => (p.freeMemBytes === null ? null : p.freeMemBytes / 2 ** 20)),
        },
      ],
    }),
    [w],
  );
  if (w.length === 0) return <Empty>No telemetry received in the last hour.</Empty>;
  return (
    <div class="charts">
      <Chart title="Latency" x={x} series={series.latency} />
      <Chart title="Throughput" x={x} series={series.throughput} />
      <Chart title="Errors" x={x} series={series.errors} />
      <Chart title="CPU" x={x} series={series.cpu} />
      <Chart title="Agent memory" x={x} series={series.memory} format={(v) => fmt(v, 4)} />
      <Chart title="Device free memory" x={x} series={series.free} format={(v) => fmt(v, 4)} />
    </div>
  );
}

export function UpdateHistory(props: { updates: UpdateEntry[] }) {
  if (props.updates.length === 0) return <Empty>No rollout has targeted this device yet.</Empty>;
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Model</th>
          <th scope="col">Rollout</th>
          <th scope="col">State here</th>
          <th scope="col">Provider</th>
          <th scope="col">Reason</th>
        </tr>
      </thead>
      <tbody>
        {props.updates.map((u) => (
          <tr key={u.rolloutId}>
            <td>
              <Time at={u.updatedAt} />
            </td>
            <td>
              {u.model.name} v{u.model.version}
            </td>
            <td>
              <a href={href('rollouts', u.rolloutId)}>{u.rolloutId}</a> <Badge value={u.phase} />
            </td>
            <td>
              <Badge value={u.state} />
            </td>
            <td>{u.executionProvider ?? '—'}</td>
            <td>{u.reason ? `${u.reason.code}: ${u.reason.message}` : '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DeviceDrift(props: { deviceId: string; model: string }) {
  const drift = useResource<DeviceDriftReport>(
    `/drift/${encodeURIComponent(props.model)}/devices/${encodeURIComponent(props.deviceId)}`,
    (e) => e.type === 'change' && e.action.startsWith('drift'),
  );
  if (drift.error instanceof ApiError && drift.error.status === 404)
    return (
      <Empty>
        {props.model}: no drift report from this device yet (it reports once a window of requests closes).
      </Empty>
    );
  return (
    <Loading resource={drift}>
      {(report) => (
        <>
          <p>
            {props.model} v{report.version}: <Badge value={report.verdict} />{' '}
            {fmt(report.driftedShare * 100, 3)}% of features drifted over {fmt(report.samples)} samples,{' '}
            <Time at={new Date(report.receivedAt).toISOString()} />
          </p>
          <table>
            <thead>
              <tr>
                <th scope="col">Feature</th>
                <th scope="col">PSI</th>
                <th scope="col">Jensen–Shannon</th>
                <th scope="col">p-value</th>
                <th scope="col">Drifted</th>
              </tr>
            </thead>
            <tbody>
              {report.features.map((f) => (
                <tr key={f.name}>
                  <td>{f.name}</td>
                  <td>{fmt(f.psi)}</td>
                  <td>{fmt(f.jensenShannon)}</td>
                  <td>{fmt(f.pValue)}</td>
                  <td>{f.drifted ? <Badge value="drift" /> : 'no'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Loading>
  );
}
