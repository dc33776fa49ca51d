/**
 * Output formatting for humans (aligned tables, tags, ages, sizes) and for machines (`--json`: exactly one
 * JSON document). Pure functions returning strings; commands decide where they go.
 */

/** Columns padded to their widest cell, two spaces apart, no trailing spaces. Headers are printed as given. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    widths
      .map((w, i) => (cells[i] ?? '').padEnd(w))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** Labelled lines (`key:  value`) with the values aligned. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${v}`.trimEnd()).join('\n') + '\n';
}

/** The one JSON document `--json` prints. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** { a: '1', b: '2' } → `a=1,b=2` (sorted); `-` when empty. */
export function formatTags(tags: Readonly<Record<string, string>> | null | undefined): string {
  const entries = Object.entries(tags ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

/** How long ago `iso` was, relative to `now`: `12s ago`, `5m ago`, `3h ago`, `2d ago`; `never` for null. */
export function formatAgo(iso: string | null | undefined, now: Date): string {
  if (!iso) return 'never';
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return iso;
  const seconds = Math.round((now.getTime() - then) / 1000);
  if (seconds < 0) return 'just now';
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

/** 1536 → `1.5 KiB`; exact byte counts stay available in `--json`. */
export { formatBytes } from '../../shared/format.js';

/** `demo@3`. */
export function formatModelRef(ref: { name: string; version: number | string }): string {
  return `${ref.name}@${ref.version}`;
}

/** A dash for missing values, so table columns never collapse. */
export function orDash(value: string | number | null | undefined): string {
  return value === null || value === undefined || value === '' ? '-' : String(value);
}

/** Keep one table cell on one line and bounded. */
export function cell(text: string, max = 80): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Indent every non-empty line by two spaces (sub-tables under a heading). */
export function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => (line.length > 0 ? `  ${line}` : line))
    .join('\n');
}

/** `accuracy 0.9125  macroF1 0.9100 ...`: every numeric metric but the row count, or the first `limit`. */
export function formatMetrics(metrics: object | null | undefined, limit?: number): string {
  if (!metrics) return '-';
  const entries = Object.entries(metrics).filter(([k, v]) => typeof v === 'number' && k !== 'rows');
  return entries
    .slice(0, limit)
    .map(([k, v]) => `${k} ${(v as number).toFixed(4)}`)
    .join('  ');
}
