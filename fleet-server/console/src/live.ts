/**
 * Live updates: one Server-Sent Events stream (`GET /api/v1/events`) shared by every view. Read with fetch
 * rather than EventSource, because EventSource cannot send the Authorization header. Reconnects with backoff.
 *
 * Events: `change` (an audit entry: any mutating call or automatic action) and `update` (a rollout, a
 * training run or a device record changed, coalesced by the server).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { AuditEvent } from '../../../shared/api/audit';
import { storedToken } from './api';

/** An audit entry as the event stream and the overview carry it (the wire contract's). */
export type { AuditEvent };

export type LiveEvent =
  | ({ type: 'change' } & AuditEvent)
  | { type: 'update'; kind: 'rollout' | 'training-run' | 'device'; id: string };

type Listener = (event: LiveEvent) => void;
type StatusListener = (status: LiveStatus) => void;
export type LiveStatus = 'connecting' | 'live' | 'offline';

const listeners = new Set<Listener>();
const statusListeners = new Set<StatusListener>();
let status: LiveStatus = 'connecting';
let controller: AbortController | null = null;

function setStatus(next: LiveStatus): void {
  status = next;
  for (const l of statusListeners) l(next);
}

export function startLive(): void {
  if (controller) return;
  controller = new AbortController();
  void run(controller.signal);
}

export function stopLive(): void {
  controller?.abort();
  controller = null;
}

async function run(signal: AbortSignal): Promise<void> {
  let backoff = 500;
  while (!signal.aborted) {
    setStatus('connecting');
    try {
      const response = await fetch('/api/v1/events', {
        headers: { authorization: `Bearer ${storedToken() ?? ''}`, accept: 'text/event-stream' },
        signal,
      });
      if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
        }
        backoff = 500;
      }
    } catch {
      if (signal.aborted) return;
    }
    setStatus('offline');
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 10_000);
  }
}

function dispatch(block: string): void {
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  if (event === 'ready') {
    setStatus('live');
    return;
  }
  if (event !== 'change' && event !== 'update') return;
  try {
    const parsed = { type: event, ...JSON.parse(data) } as LiveEvent;
    for (const l of listeners) l(parsed);
  } catch {
    // A malformed event is skipped; the next one refreshes the view anyway.
  }
}

/** Calls `onEvent` for every live event while the component is mounted. */
export function useLiveEvents(onEvent: Listener): void {
  const ref = useRef(onEvent);
  ref.current = onEvent;
  useEffect(() => {
    const listener: Listener = (e) => ref.current(e);
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }, []);
}

export function useLiveStatus(): LiveStatus {
  const [value, setValue] = useState(status);
  useEffect(() => {
    statusListeners.add(setValue);
    return () => {
      statusListeners.delete(setValue);
    };
  }, []);
  return value;
}
