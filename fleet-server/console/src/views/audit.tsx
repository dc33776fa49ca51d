/** The audit log: every change and automatic action, newest first, filterable, with the chain's integrity. */
import { useState } from 'preact/hooks';
import type { AuditEntry as Entry } from '../../../../shared/api/audit';
import { Badge, Empty, Loading, Page, Time, useResource } from '../ui';

export function AuditView() {
  const [draft, setDraft] = useState({ actor: '', action: '', target: '' });
  const [filters, setFilters] = useState(draft);
  const params = new URLSearchParams({ limit: '200' });
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  const entries = useResource<{ entries: Entry[] }>(`/audit?${params}`, (e) => e.type === 'change');
  const verify = useResource<{
    ok: boolean;
    entries: number;
    firstBad?: { seq: number; problem: string } | null;
  }>('/audit/verify');
  return (
    <Page title="Audit log">
      <Loading resource={verify}>
        {(v) => (
          <p role="status">
            Chain: <Badge value={v.ok ? 'ok' : 'failed'} /> {v.entries} entries checked
            {v.firstBad ? ` — first bad entry #${v.firstBad.seq}: ${v.firstBad.problem}` : ''}
          </p>
        )}
      </Loading>
      <form
        class="filters"
        aria-label="Filter the audit log"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        <label>
          Actor
          <input value={draft.actor} onInput={(e) => setDraft({ ...draft, actor: e.currentTarget.value })} />
        </label>
        <label>
          Action
          <input
            value={draft.action}
            onInput={(e) => setDraft({ ...draft, action: e.currentTarget.value })}
            placeholder="POST /api/v1/rollouts"
          />
        </label>
        <label>
          Target
          <input
            value={draft.target}
            onInput={(e) => setDraft({ ...draft, target: e.currentTarget.value })}
            placeholder="rollouts/ro-…"
          />
        </label>
        <button type="submit" class="primary">
          Apply filters
        </button>
      </form>
      <Loading resource={entries}>
        {(l) =>
          l.entries.length === 0 ? (
            <Empty>No entry matches.</Empty>
          ) : (
            <table class="audit">
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">When</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col">Status</th>
                  <th scope="col">Detail</th>
                </tr>
              </thead>
              <tbody>
                {l.entries.map((e) => (
                  <tr key={e.seq}>
                    <td>{e.seq}</td>
                    <td>
                      <Time at={e.at} />
                    </td>
                    <td>
                      {e.actor}
                      {e.role ? <span class="muted"> ({e.role})</span> : null}
                    </td>
                    <td>
                      <code>{e.action}</code>
                    </td>
                    <td>{e.target}</td>
                    <td>{e.status ?? '—'}</td>
                    <td>{e.detail ?? ''}</td>
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
