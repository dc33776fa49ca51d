/**
 * `edgefleet data …` against a real fleet server (in-process, ephemeral ports): import a CSV that creates a
 * task, see refusals named, snapshot it.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFleet, type TestFleet } from '../../../support/fleet.js';
import { runCli } from './harness.js';

describe('edgefleet data', () => {
  let env: TestFleet;
  let cwd: string;
  let cli: (args: string[]) => ReturnType<typeof runCli>;

  beforeAll(async () => {
    env = await startTestFleet();
    cwd = await mkdtemp(join(tmpdir(), 'cli-data-'));
    await writeFile(join(cwd, 'machines.csv'), 'temp,vibration,label\n20,0.1,ok\n80,2.5,fault\n21,0.2,ok\n');
    await writeFile(join(cwd, 'more.csv'), 'temp,vibration,label\n22,0.1,ok\nNaN,0.3,ok\n23,0.4,melted\n');
    await writeFile(join(cwd, 'table.xlsx'), 'x');
    const envVars = { EDGEFLEET_URL: env.fleet.httpUrl, EDGEFLEET_TOKEN: env.fleet.adminToken };
    cli = (args) => runCli(args, { env: envVars, cwd });
  });
  afterAll(async () => env?.close());

  it('imports a CSV into a new task, then refuses bad rows of a second file with their reasons', async () => {
    const first = await cli(['data', 'import', 'machines.csv', '--task', 'machines']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/created task machines \(classification, 2 features, classes fault,ok\)/);
    expect(first.stdout).toMatch(/imported 3 sample\(s\)/);

    const second = await cli(['data', 'import', 'more.csv', '--task', 'machines']);
    expect(second.stdout).toMatch(
      /imported 1 sample\(s\), refused: 1 non_finite_feature, 1 label_not_in_classes/,
    );
    expect(second.stdout).toMatch(/label "melted" is not one of fault, ok/);

    const show = await cli(['data', 'show', 'machines', '--json']);
    const task = JSON.parse(show.stdout);
    expect(task.stats).toMatchObject({
      samples: 4,
      rejectedBySource: { 'import:more.csv': { non_finite_feature: 1, label_not_in_classes: 1 } },
    });
  });

  it('snapshots the task, and the same data gives the same snapshot', async () => {
    const a = await cli(['data', 'snapshot', '--task', 'machines', '--json']);
    expect(a.code, a.stderr).toBe(0);
    const snap = JSON.parse(a.stdout);
    expect(snap).toMatchObject({
      task: 'machines',
      count: 4,
      labeled: 4,
      bySource: { 'import:machines.csv': 3, 'import:more.csv': 1 },
    });
    const b = await cli(['data', 'snapshot', '--task', 'machines']);
    expect(b.stdout).toContain(snap.id);
  });

  it('names the problem: unknown format, missing file, unknown task', async () => {
    const format = await cli(['data', 'import', 'table.xlsx', '--task', 'machines']);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(/--format csv\|jsonl/);
    const missing = await cli(['data', 'import', 'nope.csv', '--task', 'machines']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.csv/);
    const unknown = await cli(['data', 'snapshot', '--task', 'ghost']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/task 'ghost' not found/);
  });
});
