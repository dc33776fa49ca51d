/**
 * `edgefleet drift status`, `retrain policy set|show`, `retrain trigger|list|show|approve` against a real fleet
 * server (in-process, a real training worker). Drift reports are recorded as the MQTT handler records them.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeReferenceStats } from '../../../../fleet-server/training/reference-stats.js';
import { mulberry32 } from '../../../../shared/onnx/mlp.js';
import type { DriftMessage } from '../../../../shared/protocol/messages.js';
import { startTestFleet, type TestFleet } from '../../../support/fleet.js';
import { FEATURES, mlp } from '../../../support/models.js';
import { runCli } from './harness.js';

function csv(rows: number): string {
  const random = mulberry32(5);
  const lines = ['temp,vibration,label'];
  for (let r = 0; r < rows; r++) {
    const f = [random() * 4 - 2, random() * 4 - 2].map((x) => x.toFixed(3));
    lines.push([...f, Number(f[0]) > 0 ? 'fault' : 'ok'].join(','));
  }
  return `${lines.join('\n')}\n`;
}

function report(version: number, verdict: 'drift' | 'no_drift', drifted: string[]): DriftMessage {
  return {
    v: 1,
    type: 'drift',
    id: crypto.randomUUID(),
    ts: Date.now(),
    model: { name: 'machines', version },
    cause: 'verdict_change',
    verdict,
    verdictSince: Date.now() - 90_000,
    window: { startedAt: 0, endedAt: 1, samples: 500, closedBy: 'count' },
    driftedShare: drifted.length / 2,
    features: ['temp', 'vibration'].map((name) => ({
      name,
      ksStatistic: 0.3,
      pValue: 0.001,
      adjustedPValue: 0.002,
      psi: drifted.includes(name) ? 0.8 : 0.01,
      jensenShannon: 0.2,
      drifted: drifted.includes(name),
    })),
    prediction: null,
    concept: { labeled: 0, meanLoss: null, drifted: false, detections: { pageHinkley: 0, adwin: 0 } },
    dropped: 0,
    captureRate: verdict === 'drift' ? 0.25 : 0.01,
  };
}

describe('edgefleet drift and retrain', () => {
  let env: TestFleet;
  let cli: (args: string[]) => ReturnType<typeof runCli>;

  beforeAll(async () => {
    env = await startTestFleet();
    const cwd = await mkdtemp(join(tmpdir(), 'cli-drift-'));
    await writeFile(join(cwd, 'machines.csv'), csv(150));
    cli = (args) =>
      runCli(args, {
        env: { EDGEFLEET_URL: env.fleet.httpUrl, EDGEFLEET_TOKEN: env.fleet.adminToken },
        cwd,
        io: { sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))) },
      });
    expect((await cli(['data', 'import', 'machines.csv', '--task', 'machines'])).code).toBe(0);
  });
  afterAll(async () => env?.close());

  it('says when there is nothing yet', async () => {
    expect((await cli(['drift', 'status'])).stdout).toBe('no drift reports yet\n');
    expect((await cli(['retrain', 'list'])).stdout).toBe('no retrains\n');
    const missing = await cli(['retrain', 'policy', 'show', '--task', 'machines']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/retrain policy for task 'machines' not found/);
  });

  it('shows drift per version, feature and device', async () => {
    await env.fleet.drift.record('dev-aaa', report(1, 'drift', ['temp']));
    await env.fleet.drift.record('dev-bbb', report(1, 'no_drift', []));
    const out = await cli(['drift', 'status', '--task', 'machines']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^machines \(task machines\): production -, candidate -/);
    expect(out.stdout).toMatch(/^1\s+2\s+1\s+1\s+0\s+50%/m);
    expect(out.stdout).toMatch(
      /features of v1: temp 1\/2 drifting, mean PSI 0\.405; vibration 0\/2 drifting/,
    );
    // The CLI harness's clock is fixed in the past: the since column reads "just now" here.
    expect(out.stdout).toMatch(/^dev-aaa\s+1\s+drift\s+just now\s+500\s+temp\s+25%/m);
    expect(out.stdout).toMatch(/no retrain yet/);
    const byProfile = await cli(['drift', 'status', '--cohort', 'profile']);
    expect(byProfile.stdout).toMatch(/^1\s+\(unknown device\)\s+2\s+1\s+1\s+0\s+50%/m);
    const badCohort = await cli(['drift', 'status', '--cohort', 'site']);
    expect(badCohort.code).toBe(1);
    expect(badCohort.stderr).toMatch(/cohort must be 'profile' or 'tag:<key>'/);
    const json = JSON.parse((await cli(['drift', 'status', '--json'])).stdout);
    expect(json.models[0].versions[0]).toMatchObject({ version: 1, devices: 2, drifting: 1, share: 0.5 });
  });

  it('sets and shows a policy; bad options are refused naming the problem', async () => {
    const set = await cli([
      'retrain',
      'policy',
      'set',
      '--task',
      'machines',
      '--device-share',
      '30%',
      '--for',
      '5m',
      '--cooldown',
      '0',
      '--margin',
      '0.02',
      '--steps',
      '10,50,100',
      '--window',
      '2m',
    ]);
    expect(set.code, set.stderr).toBe(0);
    const shown = await cli(['retrain', 'policy', 'show', '--task', 'machines', '--json']);
    expect(JSON.parse(shown.stdout).policy).toMatchObject({
      enabled: true,
      deviceShare: 0.3,
      forS: 300,
      cooldownS: 0,
      margin: 0.02,
      mode: 'approve',
      onConcept: true,
      rollout: { steps: [10, 50, 100], windowS: 120 },
    });
    expect((await cli(['retrain', 'policy', 'show', '--task', 'machines'])).stdout).toMatch(
      /trigger:\s+30% of devices on production drifting for ≥ 300 s/,
    );
    const share = await cli(['retrain', 'policy', 'set', '--task', 'machines', '--device-share', '150%']);
    expect(share.code).toBe(2);
    expect(share.stderr).toMatch(/'150%' must be a share above 0 and at most 100%/);
    const steps = await cli(['retrain', 'policy', 'set', '--task', 'machines', '--steps', '10,50']);
    expect(steps.code).toBe(1);
    expect(steps.stderr).toMatch(/canary steps must end at 100/);
    const task = await cli(['retrain', 'policy', 'set', '--task', 'nope']);
    expect(task.code).toBe(1);
    expect(task.stderr).toMatch(/task 'nope' not found/);
  });

  it('triggers a retrain by hand, shows every step, and refuses an approval it cannot act on', async () => {
    const started = await cli([
      'retrain',
      'trigger',
      '--task',
      'machines',
      '--reason',
      'new sensors',
      '--json',
    ]);
    expect(started.code, started.stderr).toBe(0);
    const { id } = JSON.parse(started.stdout);
    let record: any;
    for (;;) {
      record = JSON.parse((await cli(['retrain', 'show', id, '--json'])).stdout);
      if (record.status !== 'training') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Nothing in production: no champion, so the challenger goes through and waits for approval (the default).
    expect(record).toMatchObject({
      status: 'awaiting_approval',
      trigger: { kind: 'manual', reason: 'new sensors' },
    });
    const shown = await cli(['retrain', 'show', id]);
    expect(shown.stdout).toMatch(/status:\s+awaiting_approval/);
    expect(shown.stdout).toMatch(
      /awaiting_approval\s+machines@1 is the candidate; `edgefleet retrain approve/,
    );
    expect((await cli(['retrain', 'list'])).stdout).toMatch(
      new RegExp(`^${id}\\s+machines\\s+manual\\s+awaiting_approval\\s+machines@1`, 'm'),
    );
    // No device runs the model: approving has nowhere to roll out to, and says so.
    const approve = await cli(['retrain', 'approve', id]);
    expect(approve.code).toBe(1);
    expect(approve.stderr).toMatch(/no device runs machines: nothing to roll the retrained version out to/);
    const unknown = await cli(['retrain', 'approve', 'rt-nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/retrain 'rt-nope' not found/);
  });

  it('models push --reference-stats signs them into the manifest, and refuses ones that do not fit the model', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'cli-refstats-'));
    await writeFile(join(cwd, 'm.onnx'), mlp(3));
    const stats = (features: number) => {
      const rows = 200;
      const random = mulberry32(8);
      return computeReferenceStats({
        features: Float32Array.from({ length: rows * features }, random),
        featureNames: Array.from({ length: features }, (_, j) => `f${j}`),
        outputs: Float32Array.from({ length: rows * 2 }, random),
        classes: ['a', 'b'],
        bins: 10,
      });
    };
    await writeFile(join(cwd, 'good.json'), JSON.stringify(stats(FEATURES)));
    await writeFile(join(cwd, 'narrow.json'), JSON.stringify(stats(3)));
    await writeFile(join(cwd, 'broken.json'), '{ "schema": ');
    const run = (args: string[]) =>
      runCli(args, { env: { EDGEFLEET_URL: env.fleet.httpUrl, EDGEFLEET_TOKEN: env.fleet.adminToken }, cwd });
    const pushed = await run([
      'models',
      'push',
      'm.onnx',
      '--name',
      'monitored',
      '--reference-stats',
      'good.json',
      '--json',
    ]);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(JSON.parse(pushed.stdout).manifest.referenceStats).toEqual(stats(FEATURES));
    const narrow = await run([
      'models',
      'push',
      'm.onnx',
      '--name',
      'monitored',
      '--reference-stats',
      'narrow.json',
    ]);
    expect(narrow.code).toBe(1);
    expect(narrow.stderr).toMatch(
      /reference statistics describe 3 features; the model's input input has shape \[batch, 32\]/,
    );
    const broken = await run([
      'models',
      'push',
      'm.onnx',
      '--name',
      'monitored',
      '--reference-stats',
      'broken.json',
    ]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/reference statistics broken\.json are not valid JSON/);
  });
});
