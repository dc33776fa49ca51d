/**
 * The console in a real browser: Debian's Chromium (headless, driven by playwright-core) against the fleet
 * server as a child process with three real agents under inference traffic. An admin signs in, finds the
 * devices, opens one, starts a canary from the form, pauses and resumes it and watches it finish without
 * reloading, then finds what it did in the audit log; a viewer sees no action and the API refuses its writes.
 * One device's apps send shifted data, so the drift views have a real drift to show.
 * Every page is scanned with axe-core (no serious or critical violation) and screenshotted under
 * test-results/console/.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeReferenceStats } from '../../../fleet-server/training/reference-stats.js';
import { seededMlp } from '../../../shared/onnx/mlp.js';
import { AgentProcess, enrollAgent } from '../../support/agent-process.js';
import { launchChromium, screenshot, seriousViolations } from '../../support/browser.js';
import { FleetProcess } from '../../support/fleet-process.js';
import { directRun, FEATURES, inferBody, randomBatch } from '../../support/models.js';
import { waitFor } from '../../support/wait.js';

const AGENTS = 3;
const model = (seed: number) => seededMlp({ seed, sizes: [FEATURES, 16, 2], softmax: true });

describe('the console in Chromium', () => {
  let root: string;
  let fleet: FleetProcess;
  const agents: AgentProcess[] = [];
  let browser: Browser;
  let admin: BrowserContext;
  let page: Page;
  let viewerToken: string;
  let rolloutId: string;
  let running = true;
  let load: Promise<unknown>;

  /** axe-core on the current page: nothing serious or critical, with the rule and element named if there is. */
  const expectAccessible = async (p: Page) => {
    const violations = await seriousViolations(p);
    expect(
      violations.map(
        (v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
      ),
    ).toEqual([]);
  };

  const signIn = async (p: Page, token: string) => {
    await p.goto(fleet.httpUrl);
    await p.getByLabel('Operator token').fill(token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'edgefleet-console-'));
    fleet = await FleetProcess.start(join(root, 'fleet'));
    for (let i = 0; i < AGENTS; i++) {
      const { token } = await fleet.api.enrollmentToken({ tags: { site: 'lab', line: String(i) } });
      const dataDir = join(root, `agent-${i}`);
      await enrollAgent({ server: fleet.httpUrl, token, dataDir });
      agents.push(
        await AgentProcess.start({
          dataDir,
          telemetryIntervalMs: 500,
          args: ['--drift-window-samples', '100', '--drift-report-interval-ms', '1000'],
        }),
      );
    }
    // v1 carries the statistics of the data it was made for, so devices monitor it for drift.
    const training = randomBatch(7, 2000);
    const referenceStats = computeReferenceStats({
      features: Float32Array.from(training),
      featureNames: Array.from({ length: FEATURES }, (_, j) => `f${j}`),
      outputs: await directRun(model(1), training, 2000),
      classes: ['a', 'b'],
      bins: 10,
    });
    const form = new FormData();
    form.set('model', new Blob([model(1)]), 'clf.onnx');
    form.set('referenceStats', JSON.stringify(referenceStats));
    const pushed = await fetch(`${fleet.httpUrl}/api/v1/models/clf/versions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fleet.api.token}` },
      body: form,
    });
    expect(pushed.status).toBe(201);
    await fleet.api.pushModel('clf', model(2));
    const first = await fleet.api.createRollout('clf', 1, { tags: { site: 'lab' } });
    await waitFor(
      async () => (await fleet.api.rollout(first.id)).phase === 'succeeded',
      'clf v1 on every device',
      60_000,
    );
    viewerToken = (
      await fleet.api.request('POST', '/api/v1/tokens', { role: 'viewer', name: 'console-viewer' })
    ).token;
    // Live traffic, so the canary's gates have requests to measure and the charts have something to draw.
    load = Promise.all(
      agents.map(async (agent, a) => {
        for (let i = 0; running; i++) {
          // The first device's apps send data shifted by +1.5 on every feature: it drifts; the others do not.
          const row = randomBatch(a * 100_000 + i, 1).map((v) => (a === 0 ? v + 1.5 : v));
          await agent.infer('clf', inferBody(row, 1)).catch(() => null);
          await new Promise((r) => setTimeout(r, 20));
        }
      }),
    );
    browser = await launchChromium();
    admin = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await admin.newPage();
  });

  afterAll(async () => {
    running = false;
    await load;
    await browser?.close();
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    await fleet?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('signs in with an operator token and shows the overview', async () => {
    await page.goto(fleet.httpUrl);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await screenshot(page, '01-sign-in');
    await expectAccessible(page);

    await page.getByLabel('Operator token').fill('ef_not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('That token is not valid').waitFor();

    await signIn(page, fleet.api.token);
    const stats = page.locator('.stat');
    await expect
      .poll(() => stats.filter({ hasText: 'online' }).locator('.stat-value').textContent())
      .toBe('3');
    await page.getByRole('cell', { name: 'clf' }).first().waitFor();
    await screenshot(page, '02-overview');
    await expectAccessible(page);
  });

  it('lists the devices, filters them and opens one with its charts and history', async () => {
    await page.getByRole('link', { name: 'Devices', exact: true }).click();
    await page.getByRole('heading', { name: 'Devices', level: 1 }).waitFor();
    for (const agent of agents) await page.getByRole('link', { name: agent.deviceId }).waitFor();
    await expectAccessible(page);
    await screenshot(page, '03-devices');

    await page.getByLabel('Tag').fill('line=1');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    await page.getByRole('link', { name: agents[1]!.deviceId }).click();

    await page.getByRole('heading', { name: `Device ${agents[1]!.deviceId}` }).waitFor();
    await page.getByRole('img', { name: /^Latency over time/ }).waitFor();
    await page.getByRole('img', { name: /^Throughput over time/ }).waitFor();
    const history = page.locator('section', { has: page.getByRole('heading', { name: 'Update history' }) });
    await history.getByRole('cell', { name: 'clf v1' }).waitFor();
    await expectAccessible(page);
    await screenshot(page, '04-device');
  });

  it('shows models, versions and a version lineage', async () => {
    await page.getByRole('link', { name: 'Models', exact: true }).click();
    await page.getByRole('link', { name: 'clf' }).click();
    await page.getByRole('heading', { name: 'Model clf' }).waitFor();
    await page.getByText('production → v1').waitFor();
    await expectAccessible(page);
    await screenshot(page, '05-model');
    await page.getByRole('link', { name: 'v1', exact: true }).click();
    await page.getByRole('list', { name: 'Lineage, from data to rollouts' }).waitFor();
    await expectAccessible(page);
    await screenshot(page, '06-model-version');

    await page.getByRole('link', { name: 'Data', exact: true }).click();
    await page.getByRole('heading', { name: 'Data and training', level: 1 }).waitFor();
    await page.getByText('No tasks yet').waitFor();
    await expectAccessible(page);
    await screenshot(page, '07-data');
  });

  it('shows drift where it is: per model and version, over time, and per feature on the device', async () => {
    await page.getByRole('link', { name: 'Drift', exact: true }).click();
    await page.getByRole('heading', { name: 'Drift', level: 1 }).waitFor();
    const byVersion = page.getByRole('table').filter({ hasText: 'Features that moved most' });
    await byVersion.getByText('drift', { exact: true }).waitFor({ timeout: 60_000 });
    await page.getByRole('img', { name: /^v1 drift, last hour over time/ }).waitFor();
    await expectAccessible(page);
    await screenshot(page, '08-drift');

    await page.goto(`${fleet.httpUrl}/#/devices/${agents[0]!.deviceId}`);
    const drift = page.locator('section', { has: page.getByRole('heading', { name: 'Drift per feature' }) });
    await drift.getByText('clf v1:').waitFor();
    await expect.poll(() => drift.locator('tbody .badge', { hasText: 'drift' }).count()).toBeGreaterThan(10);
    await screenshot(page, '09-device-drift');

    await page.getByRole('link', { name: 'Overview', exact: true }).click();
    await page.getByText(/on 1 of 3 reporting devices/).waitFor();
  });

  it('starts a canary from the form, pauses and resumes it, and follows it live to the end', async () => {
    await page.getByRole('link', { name: 'Rollouts', exact: true }).click();
    await page.getByRole('link', { name: 'New rollout' }).click();
    await page.getByRole('heading', { name: 'New rollout' }).waitFor();
    await page.getByLabel('Version').fill('2');
    await page.getByLabel('Strategy').selectOption('canary');
    await page.getByLabel('Canary steps (percent of targets)').fill('50, 100');
    await page.getByLabel('Shadow on the first cohort before it serves').uncheck();
    await page.getByLabel('Analysis or shadow window (seconds, optional)').fill('3');
    await page.getByLabel(/^Gates/).fill('activation_failure_share<=0/1, error_rate<=0.01/20');
    await page.getByLabel('Tags').fill('site=lab');
    await expectAccessible(page);
    await screenshot(page, '10-new-rollout');
    await page.getByRole('button', { name: 'Start rollout' }).click();

    const heading = page.getByRole('heading', { name: /^Rollout ro-/ });
    await heading.waitFor();
    rolloutId = (await heading.textContent())!.replace('Rollout ', '');
    // Set once; a reload would lose it. Everything below must arrive over the live stream.
    await page.evaluate("window.marker = 'no reload'");
    const phase = page.getByTestId('rollout-phase');

    await page.getByRole('button', { name: 'Pause' }).click();
    const dialog = page.getByRole('dialog', { name: `Pause rollout ${rolloutId}?` });
    await dialog.getByLabel('Reason (recorded in the audit log)').fill('checking the first cohort');
    await expectAccessible(page);
    await dialog.getByRole('button', { name: 'Confirm pause' }).click();
    await phase.getByText('paused').waitFor();
    await page.getByText('operator by bootstrap-admin: checking the first cohort').waitFor();
    await screenshot(page, '11-rollout-paused');

    await page.getByRole('button', { name: 'Resume' }).click();
    await page
      .getByRole('dialog', { name: `Resume rollout ${rolloutId}?` })
      .getByRole('button', { name: 'Confirm resume' })
      .click();
    // Gates measured live while it progresses, then the end: every device active on v2.
    await page.getByRole('table').filter({ hasText: 'error rate' }).waitFor({ timeout: 60_000 });
    await screenshot(page, '12-rollout-gates');
    const settled = await waitFor(
      async () => {
        const r = await fleet.api.rollout(rolloutId);
        return ['succeeded', 'failed', 'rolled_back', 'aborted'].includes(r.phase) ? r : undefined;
      },
      'the canary to finish',
      90_000,
    );
    expect(settled.phase, JSON.stringify(settled.status.events)).toBe('succeeded');
    await phase.getByText('succeeded').waitFor();
    const devices = page.locator('section', {
      has: page.getByRole('heading', { name: 'Devices', level: 2 }),
    });
    await expect.poll(() => devices.locator('tbody .badge', { hasText: 'active' }).count()).toBe(AGENTS);
    expect(await page.evaluate('window.marker')).toBe('no reload');
    await expectAccessible(page);
    await screenshot(page, '13-rollout-succeeded');

    const record = await fleet.api.rollout(rolloutId);
    expect(record.phase).toBe('succeeded');
    expect(record.createdBy).toBe('bootstrap-admin');
    expect(record.devices.map((d: { state: string }) => d.state)).toEqual(Array(AGENTS).fill('active'));
  });

  it('finds what the canary did in the audit log', async () => {
    await page.getByRole('link', { name: 'Audit log', exact: true }).click();
    await page.getByLabel('Target').fill(`rollouts/${rolloutId}`);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const table = page.locator('table.audit');
    for (const action of [
      `POST /api/v1/rollouts/${rolloutId}/pause`,
      `POST /api/v1/rollouts/${rolloutId}/resume`,
      'rollout.paused',
      'rollout.succeeded',
    ]) {
      await table.getByText(action, { exact: true }).first().waitFor();
    }
    await page.getByText('Chain:').getByText('ok').waitFor();
    await expectAccessible(page);
    await screenshot(page, '14-audit');
  });

  it('gives a viewer no action buttons, and the API refuses its writes', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const viewer = await context.newPage();
    await signIn(viewer, viewerToken);
    expect(await viewer.getByRole('link', { name: 'Audit log', exact: true }).count()).toBe(0);
    await viewer.getByRole('link', { name: 'Rollouts', exact: true }).click();
    await viewer.getByRole('link', { name: rolloutId }).click();
    await viewer.getByTestId('rollout-phase').getByText('succeeded').waitFor();
    for (const action of ['Pause', 'Resume', 'Abort', 'Rollback', 'Promote', 'New rollout']) {
      expect(await viewer.getByRole('button', { name: action }).count()).toBe(0);
      expect(await viewer.getByRole('link', { name: action }).count()).toBe(0);
    }
    await screenshot(viewer, '15-viewer-rollout');
    const refused = await viewer.evaluate(
      async ({ id, token }) => {
        const res = await fetch(`/api/v1/rollouts/${id}/rollback`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: '{}',
        });
        return { status: res.status, body: (await res.json()) as { error: { message: string } } };
      },
      { id: rolloutId, token: viewerToken },
    );
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/needs the operator role; the token has viewer/);
    expect((await fleet.api.rollout(rolloutId)).phase).toBe('succeeded');
    await context.close();
  });

  it('is usable from the keyboard alone', async () => {
    // A new tab: the token lives in sessionStorage, per tab, so it signs in again.
    const keyboard = await admin.newPage();
    await signIn(keyboard, fleet.api.token);
    await keyboard.keyboard.press('Tab');
    expect(await keyboard.evaluate(() => (globalThis as any).document.activeElement?.textContent)).toBe(
      'Skip to content',
    );
    // Tab to the Devices link and follow it; focus lands on the new page's heading.
    for (let i = 0; i < 10; i++) {
      await keyboard.keyboard.press('Tab');
      if (
        (await keyboard.evaluate(() => (globalThis as any).document.activeElement?.textContent)) === 'Devices'
      )
        break;
    }
    await keyboard.keyboard.press('Enter');
    await keyboard.getByRole('heading', { name: 'Devices', level: 1 }).waitFor();
    await expect
      .poll(() => keyboard.evaluate(() => (globalThis as any).document.activeElement?.id))
      .toBe('page-title');
    // The search field, then Enter submits the filter form.
    for (let i = 0; i < 5; i++) {
      await keyboard.keyboard.press('Tab');
      if (
        (await keyboard.evaluate(() => (globalThis as any).document.activeElement?.getAttribute('type'))) ===
        'search'
      )
        break;
    }
    await keyboard.keyboard.type(agents[2]!.deviceId.slice(0, 12));
    await keyboard.keyboard.press('Enter');
    await expect.poll(() => keyboard.locator('tbody tr').count()).toBeGreaterThanOrEqual(1);
    await keyboard.getByRole('link', { name: agents[2]!.deviceId }).waitFor();
    // A confirmation opens from the keyboard and Escape dismisses it without acting.
    await keyboard.goto(`${fleet.httpUrl}/#/rollouts/${rolloutId}`);
    await keyboard.getByRole('button', { name: 'Rollback' }).focus();
    await keyboard.keyboard.press('Enter');
    const dialog = keyboard.getByRole('dialog', { name: `Rollback rollout ${rolloutId}?` });
    await dialog.waitFor();
    await keyboard.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect((await fleet.api.rollout(rolloutId)).phase).toBe('succeeded');
    await keyboard.close();
  });
});
