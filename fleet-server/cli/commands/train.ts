/**
 * `edgefleet train --task T [--snapshot S] [--config F]`: queue a training run and, unless `--detach`, wait
 * for it with a progress bar on stderr (redrawn in place on a terminal, a line per epoch otherwise), then
 * print the result. With `--json`, stdout holds exactly one JSON document: `{ run, model, version, metrics,
 * champion, lineage }` (with `--detach`: the queued run). A failed run exits 1 naming its error.
 * `edgefleet runs list|show` reads runs (e.g. one started with `--detach`).
 */
import type { Command } from 'commander';
import type { TrainingRun } from '../client.js';
import type { CliContext } from '../context.js';
import { fields, formatMetrics, orDash, table } from '../format.js';
import { CliError } from '../io.js';
import { readLocal } from './models.js';

export const POLL_INTERVAL_MS = 500;
const BAR_WIDTH = 24;

export function registerTrain(program: Command, ctx: CliContext): void {
  program
    .command('train')
    .description(
      "train a task's model on a snapshot of its pool; registers the result as the model's candidate",
    )
    .requiredOption('--task <name>', 'the task to train')
    .option('--snapshot <id>', 'train on this snapshot (default: snapshot the pool now)')
    .option(
      '--config <file>',
      'training config as JSON (hidden, activation, dropout, optimizer, epochs, ...)',
    )
    .option('--detach', 'queue the run and return at once (follow it with `edgefleet runs show ID --wait`)')
    .option('--json', 'print the result (or, with --detach, the queued run) as JSON')
    .action(
      async (
        options: { task: string; snapshot?: string; config?: string; detach?: boolean; json?: boolean },
        command: Command,
      ) => {
        const config = options.config === undefined ? undefined : await readConfig(ctx, options.config);
        const client = ctx.connect(command);
        const queued = await client.train(options.task, { snapshot: options.snapshot, config });
        if (options.detach) {
          if (options.json) return ctx.printJson(queued);
          ctx.out(`training run ${queued.id} queued (task ${queued.task}, snapshot ${queued.snapshot})\n`);
          ctx.out(`follow it with: edgefleet runs show ${queued.id} --wait\n`);
          return;
        }
        if (!options.json)
          ctx.out(`training run ${queued.id} (task ${queued.task}, snapshot ${queued.snapshot})\n`);
        const run = await waitForRun(ctx, command, queued);
        const version = await client.getModelVersion({ name: run.model, version: run.result!.version });
        if (options.json) {
          return ctx.printJson({
            run: run.id,
            model: run.model,
            version: version.version,
            metrics: run.result!.metrics,
            champion: run.result!.champion,
            lineage: version.lineage,
          });
        }
        ctx.out(runResult(run));
      },
    );

  const runs = program.command('runs').description('training runs');
  runs
    .command('list')
    .description('training runs, newest first')
    .option('--task <name>', 'only this task')
    .option('--json', 'print the API response as JSON')
    .action(async (options: { task?: string; json?: boolean }, command: Command) => {
      const result = await ctx.connect(command).listTrainingRuns(options.task);
      if (options.json) return ctx.printJson(result);
      if (result.runs.length === 0) return ctx.out('no training runs\n');
      ctx.out(
        table(
          ['ID', 'TASK', 'STATUS', 'EPOCH', 'VERSION', 'SNAPSHOT', 'CREATED'],
          result.runs.map((r) => [
            r.id,
            r.task,
            r.status,
            r.progress ? `${r.progress.epoch}/${r.progress.epochs}` : '-',
            r.result ? `${r.model}@${r.result.version}` : '-',
            r.snapshot,
            r.createdAt,
          ]),
        ),
      );
    });
  runs
    .command('show')
    .description('one training run: status, progress, result or error')
    .argument('<id>', 'run id')
    .option('--wait', 'wait for the run to finish, showing progress')
    .option('--json', 'print the API response as JSON (with --wait: the final state)')
    .action(async (id: string, options: { wait?: boolean; json?: boolean }, command: Command) => {
      const client = ctx.connect(command);
      let run = await client.getTrainingRun(id);
      if (options.wait) run = await waitForRun(ctx, command, run, { failQuietly: true });
      if (options.json) return ctx.printJson(run);
      ctx.out(runDetail(run));
    });
}

async function readConfig(ctx: CliContext, path: string): Promise<Record<string, unknown>> {
  const text = (await readLocal(ctx, path, 'training config')).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CliError(`training config ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new CliError(`training config ${path} must be a JSON object`);
  return parsed as Record<string, unknown>;
}

/** Poll until the run finishes, drawing progress on stderr. A failed run throws unless `failQuietly`. */
async function waitForRun(
  ctx: CliContext,
  command: Command,
  start: TrainingRun,
  options: { failQuietly?: boolean } = {},
): Promise<TrainingRun> {
  const client = ctx.connect(command);
  const tty = ctx.io.stderrIsTTY === true;
  let run = start;
  let shownEpoch = 0;
  let drawn = false;
  for (;;) {
    if (tty && run.progress) {
      ctx.io.stderr(`\r${progressLine(run)}\u001b[K`);
      drawn = true;
    } else if (!tty) {
      for (const epoch of run.history.slice(shownEpoch)) {
        ctx.io.stderr(`${progressLine({ ...run, progress: { ...epoch, epochs: run.config.epochs } })}\n`);
      }
    }
    shownEpoch = run.history.length;
    if (run.status === 'succeeded' || run.status === 'failed') break;
    await ctx.io.sleep(POLL_INTERVAL_MS);
    run = await client.getTrainingRun(run.id);
  }
  if (drawn) ctx.io.stderr('\n');
  if (run.status === 'failed' && !options.failQuietly) {
    throw new CliError(
      `training run ${run.id} failed: ${run.error?.message ?? 'no reason recorded'} (${run.error?.code})`,
    );
  }
  return run;
}

/** `[#########...............] epoch 9/24  loss 0.4312  holdout 0.4420  accuracy 0.9125`. */
export function progressLine(run: Pick<TrainingRun, 'progress'>): string {
  const p = run.progress;
  if (!p) return 'waiting to start';
  const filled = Math.min(BAR_WIDTH, Math.round((p.epoch / p.epochs) * BAR_WIDTH));
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
  return `${bar} epoch ${p.epoch}/${p.epochs}  loss ${p.loss.toFixed(4)}  holdout ${p.holdoutLoss.toFixed(4)}  ${formatMetrics(p.metrics, 1)}`;
}

function runResult(run: TrainingRun): string {
  const r = run.result!;
  const champion = r.champion
    ? r.champion.metrics
      ? `${run.model}@${r.champion.version} (production): ${formatMetrics(r.champion.metrics)}`
      : `${run.model}@${r.champion.version} (production): ${r.champion.reason}`
    : 'none (the model has no production version)';
  return `${fields([
    ['trained', `${run.model}@${r.version} (candidate)`],
    ['backend', orDash(run.backend)],
    [
      'epochs',
      `${run.history.length} of ${run.config.epochs}, best ${r.bestEpoch}${r.stoppedEarly ? ', stopped early' : ''}`,
    ],
    ['rows', `${r.trainRows} train, ${r.holdoutRows} holdout`],
    ['metrics', formatMetrics(r.metrics)],
    ['champion', champion],
    ['duration', `${(r.durationMs / 1000).toFixed(1)} s`],
  ])}promote it with: edgefleet models promote ${run.model}@${r.version}\n`;
}

export function runDetail(run: TrainingRun): string {
  return fields([
    ['run', run.id],
    ['task', `${run.task} (model ${run.model})`],
    ['snapshot', run.snapshot],
    ['status', run.status],
    ['created', `${run.createdAt} by ${run.createdBy}`],
    ['started', orDash(run.startedAt)],
    ['finished', orDash(run.finishedAt)],
    ['backend', orDash(run.backend)],
    ['progress', progressLine(run)],
    ['version', run.result ? `${run.model}@${run.result.version}` : '-'],
    ['metrics', formatMetrics(run.result?.metrics)],
    ['error', run.error ? `${run.error.code}: ${run.error.message}` : '-'],
  ]);
}
