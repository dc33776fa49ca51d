/** Shared pieces of the console: data loading with live refresh, routing, tables, badges, confirmations. */
import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, type Principal, type Role, roleAtLeast } from './api';
import { type LiveEvent, useLiveEvents } from './live';

export const SessionContext = createContext<Principal>({ name: '', role: 'viewer' });

/** True when the signed-in token has at least `role`: views render actions only then. */
export function useCan(role: Role): boolean {
  return roleAtLeast(useContext(SessionContext).role, role);
}

export interface Resource<T> {
  data: T | undefined;
  error: ApiError | Error | undefined;
  reload: () => void;
}

/**
 * GET `path` and keep it fresh: reloaded when `live` says an event concerns it (debounced, so a burst of
 * events costs one request), keeping the previous data on screen meanwhile.
 */
export function useResource<T>(
  path: string | null,
  live?: (event: LiveEvent) => boolean,
  /** At most one live reload per this many ms (for costly reads such as the overview of a large fleet). */
  throttleMs = 250,
): Resource<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError | Error>();
  const [tick, setTick] = useState(0);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    if (path === null) return;
    const controller = new AbortController();
    api<T>(path, { signal: controller.signal }).then(
      (value) => {
        setData(value);
        setError(undefined);
      },
      (err: unknown) => {
        if (!controller.signal.aborted) setError(err instanceof Error ? err : new Error(String(err)));
      },
    );
    return () => controller.abort();
  }, [path, tick]);
  useEffect(() => {
    setData(undefined);
    setError(undefined);
  }, [path]);
  useEffect(() => () => clearTimeout(timer.current), []);
  useLiveEvents((event) => {
    if (!live?.(event)) return;
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      reload();
    }, throttleMs);
  });
  return { data, error, reload };
}

// --- routing: `#/devices/dev-1` → ['devices', 'dev-1'] ----------------------------------------------------

function currentRoute(): string[] {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path] = hash.split('?');
  return (path ?? '').split('/').filter(Boolean).map(decodeURIComponent);
}

export function useRoute(): string[] {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function href(...parts: (string | number)[]): string {
  return `#/${parts.map((p) => encodeURIComponent(String(p))).join('/')}`;
}

// --- display ----------------------------------------------------------------------------------------------

export function Page(props: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${props.title} · edgefleet`;
  }, [props.title]);
  return (
    <section aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title" tabIndex={-1}>
          {props.title}
        </h1>
        {props.actions ? <div class="actions">{props.actions}</div> : null}
      </header>
      {props.children}
    </section>
  );
}

export function Loading<T>(props: { resource: Resource<T>; children: (data: T) => ComponentChildren }) {
  const { data, error } = props.resource;
  if (error) return <ErrorBox error={error} />;
  if (data === undefined)
    return (
      <p class="muted" aria-live="polite">
        Loading…
      </p>
    );
  return <>{props.children(data)}</>;
}

export function ErrorBox(props: { error: Error }) {
  const code = props.error instanceof ApiError ? ` (${props.error.status} ${props.error.code})` : '';
  return (
    <p class="error" role="alert">
      {props.error.message}
      {code}
    </p>
  );
}

export function Empty(props: { children: ComponentChildren }) {
  return <p class="empty">{props.children}</p>;
}

const TONE: Record<string, string> = {
  online: 'good',
  active: 'good',
  succeeded: 'good',
  completed: 'good',
  pass: 'good',
  passed: 'good',
  ok: 'good',
  progressing: 'info',
  running: 'info',
  shadowing: 'info',
  pending: 'info',
  downloading: 'info',
  verifying: 'info',
  installing: 'info',
  queued: 'info',
  paused: 'warn',
  inconclusive: 'warn',
  waiting: 'muted',
  never_seen: 'muted',
  skipped: 'muted',
  offline: 'warn',
  drift: 'bad',
  failed: 'bad',
  fail: 'bad',
  aborted: 'bad',
  rolled_back: 'bad',
  rollout_failed: 'bad',
};

export function Badge(props: { value: string }) {
  return <span class={`badge ${TONE[props.value] ?? 'muted'}`}>{props.value.replaceAll('_', ' ')}</span>;
}

export function Time(props: { at: string | null | undefined }) {
  if (!props.at) return <span class="muted">—</span>;
  const date = new Date(props.at);
  return (
    <time dateTime={props.at} title={date.toISOString()}>
      {ago(date)}
    </time>
  );
}

export function ago(date: Date): string {
  const s = Math.round((Date.now() - date.getTime()) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return date.toISOString().slice(0, 10);
}

export function fmt(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  if (Number.isInteger(value)) return value.toLocaleString('en');
  return Number(value.toPrecision(digits)).toString();
}

export function Stat(props: { label: string; value: ComponentChildren; tone?: string }) {
  return (
    <div class={`stat ${props.tone ?? ''}`}>
      <div class="stat-value">{props.value}</div>
      <div class="stat-label">{props.label}</div>
    </div>
  );
}

/**
 * A button that asks first: a modal dialog (native <dialog>: focus trapped, Escape cancels) that says what
 * will happen, with an optional reason recorded in the audit log.
 */
export function ConfirmButton(props: {
  label: string;
  title: string;
  message: ComponentChildren;
  tone?: 'danger' | 'primary';
  withReason?: boolean;
  onConfirm: (reason: string) => Promise<unknown>;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const id = `confirm-${props.label.toLowerCase().replace(/\W+/g, '-')}`;
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await props.onConfirm(reason);
      dialog.current?.close();
      setReason('');
    } catch (err) {
      setError(err instanceof Error ? err : new Error(String(err)));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" class={props.tone ?? ''} onClick={() => dialog.current?.showModal()}>
        {props.label}
      </button>
      <dialog ref={dialog} aria-labelledby={`${id}-title`} class="confirm">
        <form
          method="dialog"
          onSubmit={(e) => {
            e.preventDefault();
            void confirm();
          }}
        >
          <h2 id={`${id}-title`}>{props.title}</h2>
          <div>{props.message}</div>
          {props.withReason ? (
            <label>
              Reason (recorded in the audit log)
              <input value={reason} onInput={(e) => setReason(e.currentTarget.value)} maxLength={200} />
            </label>
          ) : null}
          {error ? <ErrorBox error={error} /> : null}
          <div class="actions">
            <button type="button" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button type="submit" class={props.tone ?? 'primary'} disabled={busy}>
              {busy ? 'Working…' : `Confirm ${props.label.toLowerCase()}`}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

export function Tags(props: { tags: Record<string, string> }) {
  const entries = Object.entries(props.tags);
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <span class="tags">
      {entries.map(([k, v]) => (
        <span class="tag" key={k}>
          {k}={v}
        </span>
      ))}
    </span>
  );
}
