/** The fleet at a glance: devices online, versions running, rollouts in flight, drift alerts, recent events. */
import type { AuditEvent } from '../../../../shared/api/audit';
import type { Overview, RolloutBrief } from '../../../../shared/api/console';
import { Badge, Empty, fmt, href, Loading, Page, Stat, Time, useCan, useResource } from '../ui';

export type { Overview, RolloutBrief };

export function OverviewView() {
  const overview = useResource<Overview>('/overview', () => true, 2000);
  const canReadAudit = useCan('operator');
  return (
    <Page title="Overview">
      <Loading resource={overview}>
        {(o) => (
          <>
            <div class="stats">
              <Stat label="devices" value={fmt(o.devices.total)} />
              <Stat label="online" value={fmt(o.devices.online)} tone="good" />
              <Stat
                label="offline"
                value={fmt(o.devices.offline)}
                tone={o.devices.offline > 0 ? 'warn' : ''}
              />
              <Stat label="never seen" value={fmt(o.devices.neverSeen)} />
              <Stat label="active rollouts" value={fmt(o.rollouts.active.length)} />
              <Stat
                label="drift alerts"
                value={fmt(o.drift.alerts.length)}
                tone={o.drift.alerts.length > 0 ? 'bad' : ''}
              />
              <Stat label="training runs" value={fmt(o.training.running)} />
            </div>
            <div class="grid">
              <section aria-labelledby="versions-title">
                <h2 id="versions-title">Model versions across the fleet</h2>
                {o.versions.length === 0 ? (
                  <Empty>No device runs a model yet. Push or train one, then roll it out.</Empty>
                ) : (
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Model</th>
                        <th scope="col">Version</th>
                        <th scope="col">Devices</th>
                      </tr>
                    </thead>
                    <tbody>
                      {o.versions.map((v) => (
                        <tr key={`${v.model}@${v.version}`}>
                          <td>
                            <a href={href('models', v.model)}>{v.model}</a>
                          </td>
                          <td>
                            <a href={href('models', v.model, v.version)}>v{v.version}</a>
                          </td>
                          <td>
                            <a href={`#/devices?model=${encodeURIComponent(`${v.model}@${v.version}`)}`}>
                              {fmt(v.devices)}
                            </a>
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
              </section>
              <section aria-labelledby="rollouts-title">
                <h2 id="rollouts-title">Rollouts</h2>
                {o.rollouts.active.length + o.rollouts.recent.length === 0 ? (
                  <Empty>No rollouts yet.</Empty>
                ) : (
                  <ul class="plain">
                    {[...o.rollouts.active, ...o.rollouts.recent].map((r) => (
                      <li key={r.id}>
                        <a href={href('rollouts', r.id)}>
                          {r.model.name} v{r.model.version}
                        </a>{' '}
                        <Badge value={r.phase} />{' '}
                        <span class="muted">
                          step {Math.min(r.step + 1, r.steps)}/{r.steps} · <Time at={r.createdAt} />
                        </span>
                      </li>
                    ))}
                  </ul>
                )}
              </section>
              <section aria-labelledby="drift-title">
                <h2 id="drift-title">Drift alerts</h2>
                {o.drift.alerts.length === 0 ? (
                  <Empty>No drift: every reporting device sees data like its model's training data.</Empty>
                ) : (
                  <ul class="plain">
                    {o.drift.alerts.map((a) => (
                      <li key={`${a.model}@${a.version}`}>
                        <a href={href('models', a.model, a.version)}>
                          {a.model} v{a.version}
                        </a>
                        : <Badge value="drift" /> on {a.devicesDrifted} of {a.devicesReporting} reporting
                        devices
                      </li>
                    ))}
                  </ul>
                )}
              </section>
              <section aria-labelledby="profiles-title">
                <h2 id="profiles-title">Hardware profiles</h2>
                {o.profiles.length === 0 ? (
                  <Empty>No devices enrolled yet.</Empty>
                ) : (
                  <ul class="plain">
                    {o.profiles.map((p) => (
                      <li key={p.profile}>
                        <a href={`#/devices?profile=${encodeURIComponent(p.profile)}`}>{p.profile}</a>:{' '}
                        {fmt(p.devices)}
                      </li>
                    ))}
                  </ul>
                )}
              </section>
            </div>
            <section aria-labelledby="events-title">
              <h2 id="events-title">Recent events</h2>
              <EventList events={o.events} />
              {canReadAudit ? (
                <p>
                  <a href={href('audit')}>The whole audit log</a>
                </p>
              ) : null}
            </section>
          </>
        )}
      </Loading>
    </Page>
  );
}

export function EventList(props: { events: AuditEvent[] }) {
  if (props.events.length === 0) return <Empty>Nothing recorded yet.</Empty>;
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Actor</th>
          <th scope="col">Action</th>
          <th scope="col">Target</th>
          <th scope="col">Status</th>
        </tr>
      </thead>
      <tbody>
        {props.events.map((e) => (
          <tr key={e.seq}>
            <td>
              <Time at={e.at} />
            </td>
            <td>{e.actor}</td>
            <td>
              <code>{e.action}</code>
            </td>
            <td>{e.target}</td>
            <td>{e.status ?? '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
