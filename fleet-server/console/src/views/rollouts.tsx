/**
 * Rollouts: the list, a form that starts one (canary by default), and one rollout live: its steps, each
 * gate's measured value against its threshold, every device's state and failure reason, and the actions the
 * server says the phase allows and the signed-in role may take (served with the rollout as `actions`, with
 * what each does), each confirmed first.
 */
import { useContext, useState } from 'preact/hooks';
import type { Rollout, RolloutAction } from '../../../../shared/api/rollouts';
import { describeStep } from '../../../../shared/rollout-steps';
import { api, roleAtLeast } from '../api';
import {
  Badge,
  ConfirmButton,
  Empty,
  ErrorBox,
  fmt,
  href,
  Loading,
  Page,
  SessionContext,
  Time,
  useCan,
  useResource,
} from '../ui';

// The wire contract's types (type-only: nothing of the schemas is bundled).
export type { Rollout, RolloutAction };

const concerns = (id?: string) => (e: { type: string; kind?: string; id?: string; target?: string }) =>
  (e.type === 'update' && e.kind === 'rollout' && (id === undefined || e.id === id)) ||
  (e.type === 'change' && (e.target ?? '').startsWith('rollouts'));

export function RolloutsView() {
  const list = useResource<{ rollouts: Rollout[] }>('/rollouts', concerns());
  const canAct = useCan('operator');
  return (
    <Page
      title="Rollouts"
      actions={
        canAct ? (
          <a class="button primary" href={href('rollouts', 'new')}>
            New rollout
          </a>
        ) : null
      }
    >
      <Loading resource={list}>
        {(l) =>
          l.rollouts.length === 0 ? (
            <Empty>No rollouts yet.</Empty>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Rollout</th>
                  <th scope="col">Model</th>
                  <th scope="col">Strategy</th>
                  <th scope="col">Phase</th>
                  <th scope="col">Serving</th>
                  <th scope="col">Devices</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {l.rollouts.map((r) => (
                  <tr key={r.id}>
                    <td>
                      <a href={href('rollouts', r.id)}>{r.id}</a>
                    </td>
                    <td>
                      {r.model.name} v{r.model.version}
                    </td>
                    <td>{r.spec.strategy}</td>
                    <td>
                      <Badge value={r.phase} />
                    </td>
                    <td>{r.percent}%</td>
                    <td>
                      {r.summary.active ?? 0}/{r.summary.total ?? 0} active
                      {r.summary.failed ? `, ${r.summary.failed} failed` : ''}
                    </td>
                    <td>
                      <Time at={r.createdAt} /> by {r.createdBy}
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

function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const part of text.split(/[,\s]+/).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`tag '${part}' must look like key=value`);
    tags[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return tags;
}

export function NewRolloutView() {
  const models = useResource<{ models: { name: string; latestVersion: number }[] }>('/models');
  const [form, setForm] = useState({
    model: '',
    version: '',
    strategy: 'canary',
    steps: '10, 50, 100',
    tags: '',
    devices: '',
    bakeS: '',
    windowS: '',
    gates: '',
    shadowFirst: true,
  });
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const set = (key: keyof typeof form) => (e: { currentTarget: HTMLInputElement | HTMLSelectElement }) =>
    setForm({ ...form, [key]: e.currentTarget.value });

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const model = form.model || models.data?.models[0]?.name || '';
      if (!model) throw new Error('choose a model');
      const version = /^\d+$/.test(form.version.trim()) ? Number(form.version.trim()) : form.version.trim();
      if (version === '') throw new Error('give a version number or an alias (production, candidate)');
      const devices = form.devices.split(/[,\s]+/).filter(Boolean);
      const tags = parseTags(form.tags);
      const body: Record<string, unknown> = {
        model: { name: model, version },
        targets: { ...(devices.length ? { devices } : {}), ...(Object.keys(tags).length ? { tags } : {}) },
        strategy: form.strategy,
      };
      if (form.strategy === 'canary') {
        const steps = form.steps
          .split(/[,\s]+/)
          .filter(Boolean)
          .map(Number);
        if (steps.some((s) => !Number.isInteger(s) || s < 1 || s > 100))
          throw new Error('canary steps are whole percentages from 1 to 100, e.g. 10, 50, 100');
        body.steps = steps;
        body.shadowFirst = form.shadowFirst;
        if (form.bakeS) body.bakeS = Number(form.bakeS);
      }
      if (form.windowS) body.windowS = Number(form.windowS);
      const gates = form.gates.split(/[,;\s]+/).filter(Boolean);
      if (gates.length) body.gates = gates;
      const created = await api<{ id: string }>('/rollouts', { method: 'POST', body });
      location.hash = href('rollouts', created.id);
    } catch (err) {
      setError(err instanceof Error ? err : new Error(String(err)));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="New rollout">
      <Loading resource={models}>
        {(m) =>
          m.models.length === 0 ? (
            <Empty>
              No models in the registry yet: push one with <code>edgefleet models push</code> or train one.
            </Empty>
          ) : (
            <form class="form" onSubmit={submit}>
              <label>
                Model
                <select value={form.model || m.models[0]?.name} onChange={set('model')}>
                  {m.models.map((x) => (
                    <option key={x.name} value={x.name}>
                      {x.name} (latest v{x.latestVersion})
                    </option>
                  ))}
                </select>
              </label>
              <label>
                Version
                <input value={form.version} onInput={set('version')} placeholder="3, or candidate" required />
              </label>
              <label>
                Strategy
                <select value={form.strategy} onChange={set('strategy')}>
                  <option value="canary">canary: steps with gates</option>
                  <option value="blue-green">blue-green: shadow on every target, then switch</option>
                  <option value="all-at-once">all at once</option>
                </select>
              </label>
              {form.strategy === 'canary' ? (
                <>
                  <label>
                    Canary steps (percent of targets)
                    <input value={form.steps} onInput={set('steps')} />
                  </label>
                  <label>
                    Bake time before each analysis (seconds, optional)
                    <input type="number" min={1} value={form.bakeS} onInput={set('bakeS')} />
                  </label>
                  <label class="check">
                    <input
                      type="checkbox"
                      checked={form.shadowFirst}
                      onChange={(e) => setForm({ ...form, shadowFirst: e.currentTarget.checked })}
                    />
                    Shadow on the first cohort before it serves
                  </label>
                </>
              ) : null}
              <label>
                Analysis or shadow window (seconds, optional)
                <input type="number" min={1} value={form.windowS} onInput={set('windowS')} />
              </label>
              <label>
                Gates (optional; blank: the standard gates)
                <input
                  value={form.gates}
                  onInput={set('gates')}
                  placeholder="error_rate<=0.01/50, p95_latency_ratio<=2/50"
                />
              </label>
              <fieldset>
                <legend>Targets (tags, device ids, or both)</legend>
                <label>
                  Tags
                  <input value={form.tags} onInput={set('tags')} placeholder="site=berlin line=2" />
                </label>
                <label>
                  Device ids
                  <input value={form.devices} onInput={set('devices')} placeholder="dev-1, dev-2" />
                </label>
              </fieldset>
              {error ? <ErrorBox error={error} /> : null}
              <div class="actions">
                <a class="button" href={href('rollouts')}>
                  Cancel
                </a>
                <button type="submit" class="primary" disabled={busy}>
                  {busy ? 'Starting…' : 'Start rollout'}
                </button>
              </div>
            </form>
          )
        }
      </Loading>
    </Page>
  );
}

const label = (action: string) => action[0]!.toUpperCase() + action.slice(1);

/**
 * The actions the server serves with the rollout, already narrowed to those the signed-in role may take:
 * a confirmed button for each one the phase allows, and for the others the server's reason why not.
 */
function RolloutActions(props: { rollout: Rollout; actions: RolloutAction[]; onDone: () => void }) {
  const { rollout: r, actions } = props;
  if (actions.length === 0) return null;
  const refused = actions.filter((a) => !a.allowed);
  return (
    <>
      <div class="actions">
        {actions
          .filter((a) => a.allowed)
          .map((a) => (
            <ConfirmButton
              key={a.action}
              label={label(a.action)}
              title={`${label(a.action)} rollout ${r.id}?`}
              message={<p>{a.effect}</p>}
              // Pause and resume undo each other; the rest change what devices run for good.
              tone={a.action === 'pause' || a.action === 'resume' ? 'primary' : 'danger'}
              withReason
              onConfirm={(reason) =>
                api(`/rollouts/${encodeURIComponent(r.id)}/${a.action}`, {
                  method: 'POST',
                  body: reason ? { reason } : {},
                }).then(props.onDone)
              }
            />
          ))}
      </div>
      {refused.length > 0 ? (
        <ul class="muted" aria-label="Actions not possible now">
          {refused.map((a) => (
            <li key={a.action}>
              {label(a.action)}: not now, {a.reason}
            </li>
          ))}
        </ul>
      ) : null}
    </>
  );
}

export function RolloutView(props: { id: string }) {
  const rollout = useResource<Rollout>(`/rollouts/${encodeURIComponent(props.id)}`, concerns(props.id));
  const role = useContext(SessionContext).role;
  return (
    <Page title={`Rollout ${props.id}`}>
      <Loading resource={rollout}>
        {(r) => {
          const measured = r.status.measured ?? [];
          return (
            <>
              <dl class="facts">
                <dt>Model</dt>
                <dd>
                  <a href={href('models', r.model.name, r.model.version)}>
                    {r.model.name} v{r.model.version}
                  </a>
                </dd>
                <dt>Phase</dt>
                <dd>
                  <span data-testid="rollout-phase">
                    <Badge value={r.phase} />
                  </span>{' '}
                  serving {r.percent}% of {r.summary.total} targets
                </dd>
                <dt>Created</dt>
                <dd>
                  <Time at={r.createdAt} /> by {r.createdBy}, {r.spec.strategy}
                </dd>
                {r.status.pause ? (
                  <>
                    <dt>Paused</dt>
                    <dd>
                      {r.status.pause.kind} by {r.status.pause.by}: {r.status.pause.reason.message}
                    </dd>
                  </>
                ) : null}
                {r.status.abort ? (
                  <>
                    <dt>Stopped</dt>
                    <dd>
                      by {r.status.abort.by}: {r.status.abort.reason.code} — {r.status.abort.reason.message}
                    </dd>
                  </>
                ) : null}
              </dl>
              <RolloutActions
                rollout={r}
                actions={r.actions.filter((a) => roleAtLeast(role, a.role))}
                onDone={rollout.reload}
              />
              <section aria-labelledby="steps-title">
                <h2 id="steps-title">Steps</h2>
                <ol class="steps">
                  {r.spec.steps.map((step, i) => {
                    const state = i < r.status.step ? 'done' : i === r.status.step ? 'current' : 'next';
                    return (
                      <li key={i} class={state} aria-current={state === 'current' ? 'step' : undefined}>
                        {describeStep(step)} <span class="muted">({state})</span>
                      </li>
                    );
                  })}
                </ol>
              </section>
              <section aria-labelledby="gates-title">
                <h2 id="gates-title">Gates</h2>
                {measured.length === 0 ? (
                  <Empty>No measurement yet: gates are measured during analysis and shadow steps.</Empty>
                ) : (
                  [...measured].reverse().map((m) => (
                    <table key={m.step}>
                      <caption>
                        Step {m.step + 1} ({r.spec.steps[m.step] ? describeStep(r.spec.steps[m.step]!) : '?'}
                        ), measured <Time at={m.at} />: <Badge value={m.verdict} />
                      </caption>
                      <thead>
                        <tr>
                          <th scope="col">Gate</th>
                          <th scope="col">Measured</th>
                          <th scope="col">Threshold</th>
                          <th scope="col">Samples</th>
                          <th scope="col">Verdict</th>
                          <th scope="col">Detail</th>
                        </tr>
                      </thead>
                      <tbody>
                        {m.gates.map((g) => (
                          <tr key={g.metric}>
                            <td>{g.metric.replaceAll('_', ' ')}</td>
                            <td>{fmt(g.value)}</td>
                            <td>
                              {g.direction} {fmt(g.threshold)}
                            </td>
                            <td>
                              {fmt(g.samples)} (min {fmt(g.minSamples)})
                            </td>
                            <td>
                              <Badge value={g.verdict} />
                            </td>
                            <td>{g.detail}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  ))
                )}
              </section>
              <section aria-labelledby="devices-title">
                <h2 id="devices-title">Devices</h2>
                <p class="muted">
                  {Object.entries(r.summary)
                    .filter(([k, v]) => k !== 'total' && v > 0)
                    .map(([k, v]) => `${v} ${k}`)
                    .join(' · ') || 'no devices'}
                </p>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Device</th>
                      <th scope="col">Cohort rank</th>
                      <th scope="col">State</th>
                      <th scope="col">Mode</th>
                      <th scope="col">Provider</th>
                      <th scope="col">Reason</th>
                      <th scope="col">Updated</th>
                    </tr>
                  </thead>
                  <tbody>
                    {r.devices.map((d) => (
                      <tr key={d.deviceId}>
                        <td>
                          <a href={href('devices', d.deviceId)}>{d.deviceId}</a>
                        </td>
                        <td>{d.rank + 1}</td>
                        <td>
                          <Badge value={d.state} />
                        </td>
                        <td>{d.mode ?? '—'}</td>
                        <td>{d.executionProvider ?? '—'}</td>
                        <td>{d.reason ? `${d.reason.code}: ${d.reason.message}` : '—'}</td>
                        <td>
                          <Time at={d.updatedAt} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </section>
              <section aria-labelledby="events-title">
                <h2 id="events-title">Events</h2>
                <ol class="events" reversed>
                  {[...r.status.events].reverse().map((e, i) => (
                    <li key={i}>
                      <Time at={e.at} /> <code>{e.type}</code> {e.message}
                    </li>
                  ))}
                </ol>
              </section>
            </>
          );
        }}
      </Loading>
    </Page>
  );
}
