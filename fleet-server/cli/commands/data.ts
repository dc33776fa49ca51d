/**
 * `edgefleet data import|snapshot|tasks|show`: the data pool. `import` bootstraps a task from a CSV or JSONL
 * file (format from the extension unless given), creating the task from the file's header when it does not
 * exist yet; `snapshot` freezes a task's samples as an immutable, content-hashed dataset.
 */
import { basename, extname } from 'node:path';
import { type Command, Option } from 'commander';
import type { ImportResult, SnapshotRecord, TaskWithStats } from '../client.js';
import type { CliContext } from '../context.js';
import { fields, table } from '../format.js';
import { UsageError } from '../io.js';
import { readLocal } from './models.js';

export function registerData(program: Command, ctx: CliContext): void {
  const data = program.command('data').description('the data pool: tasks, imports, snapshots');

  data
    .command('import')
    .description('import a CSV or JSONL file into a task (created from the file when new)')
    .argument('<file>', 'CSV with a header row, or JSONL with one object per line')
    .requiredOption('--task <name>', 'task name')
    .option('--label <column>', 'label column (default: label)')
    .addOption(new Option('--kind <kind>', 'for a new task').choices(['classification', 'regression']))
    .addOption(new Option('--format <format>', 'default: from the file extension').choices(['csv', 'jsonl']))
    .option('--json', 'print the API response as JSON')
    .action(
      async (
        file: string,
        options: { task: string; label?: string; kind?: string; format?: 'csv' | 'jsonl'; json?: boolean },
        command: Command,
      ) => {
        const format = options.format ?? formatOf(file);
        const text = (await readLocal(ctx, file, 'data file')).toString('utf8');
        const result = await ctx.connect(command).importData(options.task, text, {
          format,
          label: options.label,
          kind: options.kind,
          source:
            basename(file)
              .replace(/[^\w.@-]/g, '_')
              .slice(0, 128) || 'upload',
        });
        if (options.json) return ctx.printJson(result);
        ctx.out(importSummary(result));
      },
    );

  data
    .command('snapshot')
    .description("freeze a task's samples as an immutable, content-hashed snapshot")
    .requiredOption('--task <name>', 'task name')
    .option('--json', 'print the API response as JSON')
    .action(async (options: { task: string; json?: boolean }, command: Command) => {
      const snapshot = await ctx.connect(command).createSnapshot(options.task);
      if (options.json) return ctx.printJson(snapshot);
      ctx.out(snapshotSummary(snapshot));
    });

  data
    .command('tasks')
    .description('list tasks')
    .option('--json', 'print the API response as JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      const result = await ctx.connect(command).listTasks();
      if (options.json) return ctx.printJson(result);
      if (result.tasks.length === 0) return ctx.out('no tasks\n');
      ctx.out(
        table(
          ['TASK', 'KIND', 'MODEL', 'FEATURES', 'CLASSES'],
          result.tasks.map((t) => [
            t.name,
            t.kind,
            t.model,
            String(t.features.length),
            t.classes?.join(',') ?? '-',
          ]),
        ),
      );
    });

  data
    .command('show')
    .description('a task with its sample counts and refusals')
    .argument('<task>', 'task name')
    .option('--json', 'print the API response as JSON')
    .action(async (task: string, options: { json?: boolean }, command: Command) => {
      const result = await ctx.connect(command).getTask(task);
      if (options.json) return ctx.printJson(result);
      ctx.out(taskDetail(result));
    });
}

function formatOf(file: string): 'csv' | 'jsonl' {
  const ext = extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new UsageError(`cannot tell the format of ${file} from its extension: pass --format csv|jsonl`);
}

export function importSummary(r: ImportResult): string {
  const refused = Object.entries(r.rejected)
    .map(([reason, n]) => `${n} ${reason}`)
    .join(', ');
  let text = `${r.created ? 'created task' : 'task'} ${r.task.name} (${r.task.kind}, ${r.task.features.length} features${r.task.classes ? `, classes ${r.task.classes.join(',')}` : ''})\n`;
  text += `imported ${r.accepted} sample(s)${r.duplicates ? `, ${r.duplicates} already in the pool` : ''}${refused ? `, refused: ${refused}` : ''}\n`;
  for (const e of r.examples) text += `  ${e.id}: ${e.reason}: ${e.detail}\n`;
  return text;
}

export function snapshotSummary(s: SnapshotRecord): string {
  return `${fields([
    ['snapshot', s.id],
    ['task', s.task],
    ['sha256', s.sha256],
    ['samples', `${s.count} (${s.labeled} labeled)`],
    [
      'sources',
      Object.entries(s.bySource)
        .map(([k, n]) => `${k}=${n}`)
        .join(', '),
    ],
    [
      'labels',
      Object.entries(s.byLabel)
        .map(([k, n]) => `${k}=${n}`)
        .join(', '),
    ],
    ['time range', `${s.timeRange.from} .. ${s.timeRange.to}`],
  ])}`;
}

export function taskDetail(t: TaskWithStats): string {
  let text = fields([
    ['task', t.name],
    ['kind', t.kind],
    ['model', t.model],
    ['label', t.label],
    ['features', t.features.join(', ')],
    ['classes', t.classes?.join(', ') ?? '-'],
    ['samples', `${t.stats.samples} (${t.stats.labeled} labeled)`],
  ]);
  const refused = Object.entries(t.stats.rejectedBySource);
  if (refused.length > 0) {
    text += `refused:\n${table(
      ['SOURCE', 'REASON', 'COUNT'],
      refused.flatMap(([source, reasons]) =>
        Object.entries(reasons).map(([reason, n]) => [source, reason, String(n)]),
      ),
    )}`;
  }
  return text;
}
