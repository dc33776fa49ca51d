/**
 * The fleet console: a single page served by the fleet server at `/`, bundled at startup (esbuild) with
 * everything it needs, so it works offline. Signs in with an operator token; what it shows and offers follows
 * the token's role (viewers see, operators act, admins also promote and override).
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, type Principal, roleAtLeast, storedToken, storeToken } from './api';
import { startLive, stopLive, useLiveStatus } from './live';
import { ErrorBox, href, SessionContext, useRoute } from './ui';
import { AuditView } from './views/audit';
import { DataPage, TrainingRunView } from './views/data';
import { DevicesView, DeviceView } from './views/devices';
import { DriftView } from './views/drift';
import { ModelsView, ModelView, VersionView } from './views/models';
import { OverviewView } from './views/overview';
import { NewRolloutView, RolloutsView, RolloutView } from './views/rollouts';

function SignIn(props: { onSignedIn: (p: Principal) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const principal = await api<Principal>('/whoami', { token: token.trim() });
      storeToken(token.trim());
      props.onSignedIn(principal);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? new Error('That token is not valid (unknown, revoked or mistyped).')
          : err instanceof Error
            ? err
            : new Error(String(err)),
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>edgefleet</h1>
      <form onSubmit={submit} class="form">
        <label>
          Operator token
          <input
            type="password"
            autoComplete="current-password"
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
            required
          />
        </label>
        <p class="muted">
          The fleet printed an admin token on its first start; make others with{' '}
          <code>edgefleet tokens create</code>.
        </p>
        {error ? <ErrorBox error={error} /> : null}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

const NAV = [
  { path: '', label: 'Overview', role: 'viewer' },
  { path: 'devices', label: 'Devices', role: 'viewer' },
  { path: 'models', label: 'Models', role: 'viewer' },
  { path: 'rollouts', label: 'Rollouts', role: 'viewer' },
  { path: 'drift', label: 'Drift', role: 'viewer' },
  { path: 'data', label: 'Data', role: 'viewer' },
  { path: 'audit', label: 'Audit log', role: 'operator' },
] as const;

function Routed(props: { route: string[] }) {
  const [section, a, b] = props.route;
  switch (section) {
    case undefined:
    case '':
      return <OverviewView />;
    case 'devices':
      return a ? <DeviceView id={a} /> : <DevicesView />;
    case 'models':
      return a && b ? <VersionView name={a} version={b} /> : a ? <ModelView name={a} /> : <ModelsView />;
    case 'rollouts':
      return a === 'new' ? <NewRolloutView /> : a ? <RolloutView id={a} /> : <RolloutsView />;
    case 'drift':
      return <DriftView />;
    case 'data':
      return <DataPage />;
    case 'training':
      return a ? <TrainingRunView id={a} /> : <DataPage />;
    case 'audit':
      return <AuditView />;
    default:
      return <p role="alert">No page here: {props.route.join('/')}</p>;
  }
}

function Shell(props: { principal: Principal; onSignOut: () => void }) {
  const route = useRoute();
  const live = useLiveStatus();
  useEffect(() => {
    startLive();
    return stopLive;
  }, []);
  // After navigation, move focus to the new page's heading so keyboard and screen-reader users land there.
  // Not on the first page: there the skip link comes first.
  const path = route.join('/');
  const shown = useRef(path);
  useEffect(() => {
    if (shown.current === path) return;
    shown.current = path;
    document.getElementById('page-title')?.focus();
  }, [path]);
  return (
    <SessionContext.Provider value={props.principal}>
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <a class="brand" href={href()}>
          edgefleet
        </a>
        <nav aria-label="Sections">
          <ul>
            {NAV.filter((n) => roleAtLeast(props.principal.role, n.role)).map((n) => (
              <li key={n.path}>
                <a href={`#/${n.path}`} aria-current={(route[0] ?? '') === n.path ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span class={`live ${live}`} role="status" title="Live updates">
            {live === 'live' ? '● live' : live === 'connecting' ? '○ connecting' : '○ reconnecting'}
          </span>
          <span>
            {props.principal.name} <span class="badge muted">{props.principal.role}</span>
          </span>
          <button type="button" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Routed route={route} />
      </main>
    </SessionContext.Provider>
  );
}

function App() {
  const [principal, setPrincipal] = useState<Principal | null>(null);
  const [checking, setChecking] = useState(storedToken() !== null);
  useEffect(() => {
    if (!storedToken()) return;
    api<Principal>('/whoami')
      .then(setPrincipal, () => storeToken(null))
      .finally(() => setChecking(false));
  }, []);
  if (checking) return <p class="muted">Loading…</p>;
  if (!principal) return <SignIn onSignedIn={setPrincipal} />;
  return (
    <Shell
      principal={principal}
      onSignOut={() => {
        storeToken(null);
        stopLive();
        setPrincipal(null);
      }}
    />
  );
}

render(<App />, document.getElementById('app')!);
