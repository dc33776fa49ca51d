/**
 * Bootstrap a task from a file: CSV (with a header row) or JSONL (one object per line). When the task does
 * not exist it is derived from the file: features are every numeric column but the label (in file order),
 * the label column defaults to `label`, classes are the label's distinct values. Sample ids derive from the
 * file's content hash and row number, so importing the same file twice adds nothing.
 */
import { parse } from 'csv-parse/sync';
import { sha256Hex } from '../../shared/crypto/signing.js';
import { ValidationError } from '../../shared/errors.js';
import type { Sample, Task } from '../../shared/pool.js';

export interface ImportOptions {
  format: 'csv' | 'jsonl';
  /** Label column (default `label`, or the task's label). */
  label?: string | undefined;
  kind?: 'classification' | 'regression' | undefined;
  /** Model name for a new task (default: the task name). */
  model?: string | undefined;
  /** Recorded as the samples' source, e.g. the file name. */
  sourceName: string;
  now: Date;
}

export interface ParsedImport {
  /** The task derived from the file (used only when the task does not exist yet). */
  derivedTask: Omit<Task, 'name'>;
  samples: Sample[];
  source: string;
}

type Row = Record<string, unknown>;

export function parseRows(text: string, format: 'csv' | 'jsonl'): Row[] {
  if (format === 'csv') {
    try {
      return parse(text, { columns: true, skip_empty_lines: true, trim: true }) as Row[];
    } catch (err) {
      throw new ValidationError(`CSV does not parse: ${(err as Error).message}`, { code: 'invalid_file' });
    }
  }
  const rows: Row[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new ValidationError(`JSONL line ${i + 1} is not JSON: ${(err as Error).message}`, {
        code: 'invalid_file',
      });
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ValidationError(`JSONL line ${i + 1} is not an object`, { code: 'invalid_file' });
    }
    rows.push(value as Row);
  });
  return rows;
}

const numeric = (v: unknown): number =>
  typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;

export function parseImport(text: string, existing: Task | undefined, options: ImportOptions): ParsedImport {
  const rows = parseRows(text, options.format);
  if (rows.length === 0) throw new ValidationError('the file has no data rows', { code: 'invalid_file' });
  const columns = Object.keys(rows[0]!);
  const label = options.label ?? existing?.label ?? 'label';
  if (!columns.includes(label)) {
    throw new ValidationError(
      `the file has no label column '${label}' (columns: ${columns.join(', ')}); pass --label COLUMN`,
      {
        code: 'invalid_file',
      },
    );
  }
  const features =
    existing?.features ??
    columns.filter((c) => c !== label && rows.every((r) => Number.isFinite(numeric(r[c]))));
  const missing = features.filter((f) => !columns.includes(f));
  if (missing.length > 0) {
    throw new ValidationError(`the file lacks the task's feature column(s) ${missing.join(', ')}`, {
      code: 'invalid_file',
    });
  }
  if (features.length === 0)
    throw new ValidationError('the file has no numeric feature columns', { code: 'invalid_file' });
  const kind = existing?.kind ?? options.kind ?? 'classification';
  const labelOf = (v: unknown): string | number | null => {
    if (v === undefined || v === null || v === '') return null;
    return kind === 'regression' ? numeric(v) : String(v);
  };
  const fileHash = sha256Hex(Buffer.from(text)).slice(0, 16);
  const source = `import:${options.sourceName}`;
  const ts = options.now.getTime();
  const samples: Sample[] = rows.map((row, i) => ({
    id: `import-${fileHash}-${String(i).padStart(8, '0')}`,
    source,
    features: features.map((f) => numeric(row[f])),
    label: labelOf(row[label]),
    ts,
  }));
  const classes =
    kind === 'classification'
      ? [...new Set(samples.map((s) => s.label).filter((l): l is string => typeof l === 'string'))].sort()
      : undefined;
  return {
    derivedTask: {
      kind,
      features,
      ...(classes ? { classes } : {}),
      label,
      model: options.model ?? '',
      createdAt: options.now.toISOString(),
    },
    samples,
    source,
  };
}
