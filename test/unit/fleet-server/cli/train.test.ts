/**
 * `edgefleet train`, `runs`, `models promote|show|lineage` against a real fleet server (in-process,
 * ephemeral ports, a real training worker): progress on stderr, the `--json` result, `--detach`, promotion
 * and the lineage chain, and errors that name the problem.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../../../shared/onnx/mlp.js';
import { startTestFleet, type TestFleet } from '../../../support/fleet.js';
import { runCli } from './harness.js';

function csv(rows: number): string {
  const random = mulberry32(11);
  const lines = ['temp,vibration,load,label'];
  for (let r = 0; r < rows; r++) {
    const f = [random() * 4 - 2, random() * 4 - 2, random() * 4 - 2].map((x) => x.toFixed(3));
    lines.push([...f, Number(f[0]) + Number(f[1]) > 0 ? 'fault' : 'ok'].join(','));
  }
  return `${lines.join('\n')}\n`;
}

describe('edgefleet train and the registry’s aliases and lineage', () => {
  let env: TestFleet;
  let cwd: string;
  let cli: (args: string[], tty?: boolean) => ReturnType<typeof runCli>;

  beforeAll(async () => {
    env = await startTestFleet();
    cwd = await mkdtemp(join(tmpdir(), 'cli-train-'));
    await writeFile(join(cwd, 'machines.csv'), csv(200));
    await writeFile(join(cwd, 'small.json'), JSON.stringify({ hidden: [8], epochs: 4, batchSize: 32 }));
    await writeFile(join(cwd, 'broken.json'), '{ "epochs": ');
    await writeFile(join(cwd, 'bad-epochs.json'), JSON.stringify({ epochs: 0 }));
    const envVars = { EDGEFLEET_URL: env.fleet.httpUrl, EDGEFLEET_TOKEN: env.fleet.adminToken };
    cli = (args, tty = false) =>
      runCli(args, {
        env: envVars,
        cwd,
        io: { sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))), stderrIsTTY: tty },
      });
    expect((await cli(['data', 'import', 'machines.csv', '--task', 'machines'])).code).toBe(0);
  });
  afterAll(async () => env?.close());

  let trained: any;

  it('trains, printing a line per epoch, and prints model, version, metrics and lineage as JSON', async () => {
    const run = await cli(['train', '--task', 'machines', '--config', 'small.json', '--json']);
    expect(run.code, run.stderr).toBe(0);
    trained = JSON.parse(run.stdout);
    expect(trained).toMatchObject({ model: 'machines', version: 1, champion: null });
    expect(trained.run).toMatch(/^run-/);
    expect(trained.metrics.kind).toBe('classification');
    expect(trained.lineage).toMatchObject({ run: trained.run, task: 'machines', seed: 42 });
    expect(trained.lineage.snapshot).toMatch(/^snap-/);
    // Not a terminal: one progress line per epoch, in order.
    const epochs = run.stderr.split('\n').filter((l) => l.includes(' epoch '));
    expect(epochs.map((l) => /epoch (\d+)\/4/.exec(l)?.[1])).toEqual(['1', '2', '3', '4']);
    expect(epochs[0]).toMatch(/^\[#+\.+\] epoch 1\/4 {2}loss \d+\.\d{4} {2}holdout \d+\.\d{4} {2}accuracy /);
  });

  it('on a terminal the bar redraws in place, and the human result says how to promote', async () => {
    const run = await cli(['train', '--task', 'machines', '--config', 'small.json'], true);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('\r[');
    expect(run.stderr).toMatch(/epoch 4\/4/);
    expect(run.stdout).toMatch(/^training run run-\S+ \(task machines, snapshot snap-/);
    expect(run.stdout).toMatch(/trained: +machines@2 \(candidate\)/);
    expect(run.stdout).toMatch(/champion: +none \(the model has no production version\)/);
    expect(run.stdout).toContain('promote it with: edgefleet models promote machines@2');
  });

  it('promotes, then compares the next run against production', async () => {
    const promote = await cli(['models', 'promote', 'machines@1']);
    expect(promote.stdout).toBe('machines production: (unset) -> v1\n');
    expect((await cli(['models', 'promote', 'machines@1'])).stdout).toBe(
      'machines production is already v1\n',
    );
    const list = await cli(['models', 'list']);
    expect(list.stdout).toMatch(/machines +2 +1 +2 +2 /);

    const detached = await cli([
      'train',
      '--task',
      'machines',
      '--config',
      'small.json',
      '--detach',
      '--json',
    ]);
    const queued = JSON.parse(detached.stdout);
    expect(queued.status).toBe('queued');
    const shown = await cli(['runs', 'show', queued.id, '--wait', '--json']);
    const finished = JSON.parse(shown.stdout);
    expect(finished.status).toBe('succeeded');
    expect(finished.result.champion).toEqual({ version: 1, metrics: trained.metrics, reason: null });
    const runs = await cli(['runs', 'list', '--task', 'machines']);
    expect(runs.stdout.split('\n').filter((l) => l.startsWith('run-'))).toHaveLength(3);
    expect(runs.stdout).toMatch(new RegExp(`${queued.id} +machines +succeeded +4/4 +machines@3`));
  });

  it('shows a version by alias with its lineage, and prints the lineage chain', async () => {
    const show = await cli(['models', 'show', 'machines@production']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/model: +machines@1/);
    expect(show.stdout).toMatch(/aliases: +production/);
    expect(show.stdout).toMatch(new RegExp(`snapshot: +${trained.lineage.snapshot}`));
    expect(show.stdout).toMatch(/champion: +none/);
    const json = JSON.parse((await cli(['models', 'show', 'machines@candidate', '--json'])).stdout);
    expect(json.version, JSON.stringify(json.aliases)).toBe(3);
    expect(json.lineage.champion.version).toBe(1);

    const lineage = await cli(['models', 'lineage', 'machines@1']);
    expect(lineage.stdout).toMatch(/devices: +import:machines\.csv \(import, 200 samples\)/);
    expect(lineage.stdout).toMatch(
      new RegExp(`snapshot: +${trained.lineage.snapshot}: 200 samples, 200 labeled`),
    );
    expect(lineage.stdout).toMatch(new RegExp(`run: +${trained.run}: succeeded on \\w+`));
    expect(lineage.stdout).toMatch(/version: +machines@1 \(production\): accuracy /);
    expect(lineage.stdout).toMatch(/rollouts: +none/);
  });

  it('names the problem when a run cannot start or fails', async () => {
    const broken = await cli(['train', '--task', 'machines', '--config', 'broken.json']);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/training config broken\.json is not valid JSON/);
    const missing = await cli(['train', '--task', 'machines', '--config', 'nope.json']);
    expect(missing.stderr).toMatch(/cannot read training config nope\.json: no such file/);
    const badEpochs = await cli(['train', '--task', 'machines', '--config', 'bad-epochs.json']);
    expect(badEpochs.code).toBe(1);
    expect(badEpochs.stderr).toMatch(/training config: .*epochs.*\(invalid_config, HTTP 400\)/);
    const unknown = await cli(['train', '--task', 'nothing']);
    expect(unknown.stderr).toMatch(/task 'nothing' (was not found|not found).*HTTP 404/);
    const noTask = await cli(['train']);
    expect(noTask.code).toBe(2);
    const badAlias = await cli(['models', 'show', 'machines@latest']);
    expect(badAlias.code).toBe(2);
    expect(badAlias.stderr).toMatch(/version 'latest' in 'machines@latest' must be a positive integer or/);
    const badPromote = await cli(['models', 'promote', 'machines@9']);
    expect(badPromote.code).toBe(1);
    expect(badPromote.stderr).toMatch(/HTTP 404/);
  });
});
