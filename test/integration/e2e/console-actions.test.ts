/**
 * The console offers exactly the rollout actions the server allows, in every phase (issue 13, bug 3: the
 * console kept its own table, said abort leaves devices on what they run and offered rollback in `aborted`,
 * which the server refuses). One fleet server, one Chromium, one rollout per phase — each of its own model,
 * since a model has one live rollout — driven there by devices that speak the real protocol over the
 * embedded broker with their own credentials. Each rollout page is compared, for an operator and an admin,
 * with the `actions` the server serves (narrowed to the role) and with the rules written out below; the
 * server's reasons for the rest are shown, and the server refuses each of those with the same words.
 * A viewer sees no action.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshot, seriousViolations } from '../../support/browser.js';
import { Api, ApiError, startTestFleet, type TestFleet } from '../../support/fleet.js';
import { mlp } from '../../support/models.js';
import { type Answers, ProtocolDevice } from '../../support/protocol-device.js';
import { HAPPY_PATH } from '../../support/update-states.js';
import { waitFor } from '../../support/wait.js';

const PHASES = ['progressing', 'paused', 'succeeded', 'failed', 'aborted', 'rolled_back'] as const;
type Phase = (typeof PHASES)[number];
type Role = 'viewer' | 'operator' | 'admin';

/**
 * What an operator may do in each phase, written from the product's rules rather than read from the server:
 * abort stops and rolls back, so once a rollout finished or stopped only rollback is left (after success
 * or failure), and nothing once it is rolling back or rolled back.
 */
const OPERATOR_MAY: Record<Phase, string[]> = {
  progressing: ['Pause', 'Abort', 'Rollback'],
  paused: ['Resume', 'Abort', 'Rollback'],
  succeeded: ['Rollback'],
  failed: ['Rollback'],
  aborted: [],
  rolled_back: [],
};
/** Promote overrides the remaining gates: admins only, and only while the rollout still has steps to skip. */
const ADMIN_ALSO_MAY: Record<Phase, string[]> = {
  progressing: ['Promote'],
  paused: ['Promote'],
  succeeded: [],
  failed: [],
  aborted: [],
  rolled_back: [],
};

/** How each phase's device answers: silent, active, failed, or silent on the rollback that follows an abort. */
const SCRIPTS: Record<Phase, Answers> = {
  progressing: { install: [], rollback: false },
  paused: { install: [], rollback: false },
  succeeded: { install: HAPPY_PATH, rollback: false },
  failed: { install: ['received', 'downloading', 'failed'], rollback: false },
  aborted: { install: ['received', 'downloading'], rollback: false },
  rolled_back: { install: HAPPY_PATH, rollback: true },
};

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
const label = (action: string) => action[0]!.toUpperCase() + action.slice(1);
const modelOf = (phase: Phase) => `m-${phase.replace('_', '-')}`;

interface ServedAction {
  action: string;
  allowed: boolean;
  role: Role;
  reason: string | null;
  effect: string;
}

describe('rollout actions in the console, phase by phase', () => {
  let env: TestFleet;
  let browser: Browser;
  const devices: ProtocolDevice[] = [];
  const rolloutOf = {} as Record<Phase, string>;
  const apis = {} as Record<Role, Api>;

  const phaseOf = async (id: string) => (await env.api.rollout(id)).phase as string;
  const reach = (id: string, phase: string) =>
    waitFor(async () => (await phaseOf(id)) === phase, `rollout ${id} in phase ${phase}`);

  /** Drive a fresh rollout of its own model to `phase`, through a device answering as SCRIPTS says. */
  const rolloutIn = async (phase: Phase, seed: number): Promise<string> => {
    const device = await ProtocolDevice.enroll(env.api, SCRIPTS[phase]);
    devices.push(device);
    await env.api.pushModel(modelOf(phase), mlp(seed, 8));
    const { id } = await env.api.createRollout(modelOf(phase), 1, { devices: [device.deviceId] });
    await device.command('install', id);
    const operator = apis.operator;
    switch (phase) {
      case 'progressing':
        break;
      case 'paused':
        await operator.request('POST', `/api/v1/rollouts/${id}/pause`, {});
        break;
      case 'succeeded':
      case 'failed':
        await reach(id, phase);
        break;
      case 'aborted':
        // Aborted while installing: the device is sent a rollback it never answers, so it stays aborted.
        await waitFor(
          async () => (await env.api.rollout(id)).devices[0].state === 'downloading',
          'the device downloading',
        );
        await operator.request('POST', `/api/v1/rollouts/${id}/abort`, {});
        await device.command('rollback', id);
        break;
      case 'rolled_back':
        await reach(id, 'succeeded');
        await operator.request('POST', `/api/v1/rollouts/${id}/rollback`, {});
        await device.command('rollback', id);
        await reach(id, 'rolled_back');
        break;
    }
    // Premise: the rollout is where this suite needs it.
    expect(await phaseOf(id)).toBe(phase);
    return id;
  };

  const signIn = async (role: Role): Promise<Page> => {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(env.fleet.httpUrl);
    await page.getByLabel('Operator token').fill(apis[role].token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    return page;
  };

  /** Open the rollout's page and wait until it shows that rollout in that phase. */
  const open = async (page: Page, phase: Phase) => {
    await page.goto(`${env.fleet.httpUrl}/#/rollouts/${rolloutOf[phase]}`);
    await page.getByRole('heading', { name: `Rollout ${rolloutOf[phase]}` }).waitFor();
    await page.getByRole('link', { name: `${modelOf(phase)} v1` }).waitFor();
    await page.getByTestId('rollout-phase').getByText(phase.replace('_', ' '), { exact: true }).waitFor();
  };

  /** Every button on the page's main content, by name (dialogs closed, so their buttons are hidden). */
  const buttons = (page: Page) => page.getByRole('main').getByRole('button').allTextContents();

  /** The served actions of the rollout, as `role` reads them. */
  const served = async (role: Role, phase: Phase): Promise<ServedAction[]> =>
    (await apis[role].rollout(rolloutOf[phase])).actions;

  beforeAll(async () => {
    env = await startTestFleet();
    apis.admin = env.api;
    for (const role of ['operator', 'viewer'] as const) {
      const { token } = await env.api.request('POST', '/api/v1/tokens', { role, name: `console-${role}` });
      apis[role] = new Api(env.fleet.httpUrl, token);
    }
    browser = await launchChromium();
    // Each phase's rollout stands on its own (own model, own device), so they are driven side by side.
    const ids = await Promise.all(PHASES.map((phase, i) => rolloutIn(phase, i + 1)));
    PHASES.forEach((phase, i) => {
      rolloutOf[phase] = ids[i]!;
    });
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all(devices.map((d) => d.close()));
    await env?.close();
  });

  for (const role of ['operator', 'admin'] as const) {
    it(`offers ${role === 'admin' ? 'an admin' : 'an operator'} exactly what the server allows, in every phase`, async () => {
      const page = await signIn(role);
      for (const phase of PHASES) {
        await open(page, phase);
        const actions = (await served(role, phase)).filter((a) => RANK[role] >= RANK[a.role]);
        const offered = (await buttons(page)).sort();
        // What the server serves, narrowed to the role…
        expect(offered, `${role} in ${phase}: buttons against the served actions`).toEqual(
          actions
            .filter((a) => a.allowed)
            .map((a) => label(a.action))
            .sort(),
        );
        // …and what the product's rules say, so a wrong table on either side shows here.
        const expected = [...OPERATOR_MAY[phase], ...(role === 'admin' ? ADMIN_ALSO_MAY[phase] : [])];
        expect(offered, `${role} in ${phase}: buttons against the rules`).toEqual(expected.sort());

        // Each confirmation says what the server says the action does.
        for (const a of actions.filter((x) => x.allowed)) {
          await page
            .getByRole('main')
            .getByRole('button', { name: label(a.action), exact: true })
            .click();
          const dialog = page.getByRole('dialog', {
            name: `${label(a.action)} rollout ${rolloutOf[phase]}?`,
          });
          await dialog.waitFor();
          const text = await dialog.textContent();
          expect(text, `${role}: what ${a.action} does`).toContain(a.effect);
          // Abort rolls back (the old console said devices keep what they run).
          if (a.action === 'abort') expect(text).toMatch(/rolls back every device/);
          await page.keyboard.press('Escape');
          await dialog.waitFor({ state: 'hidden' });
        }

        // The rest are shown with the server's reason, and the server refuses each with those words.
        const refused = actions.filter((a) => !a.allowed);
        const list = page.getByRole('list', { name: 'Actions not possible now' });
        if (refused.length === 0) expect(await list.count()).toBe(0);
        else
          expect(await list.getByRole('listitem').allTextContents()).toEqual(
            refused.map((a) => `${label(a.action)}: not now, ${a.reason}`),
          );
        for (const a of refused) {
          const attempt = apis[role].request('POST', `/api/v1/rollouts/${rolloutOf[phase]}/${a.action}`, {});
          const error = await attempt.then(
            () => null,
            (err: unknown) => err,
          );
          expect(error, `${role} ${a.action} in ${phase}`).toBeInstanceOf(ApiError);
          expect((error as ApiError).status).toBe(409);
          expect((error as ApiError).body.error.message).toContain(a.reason);
        }

        if (role === 'operator') {
          const violations = await seriousViolations(page);
          expect(violations.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
          await screenshot(page, `actions-${phase}`);
        }
        // Nothing above moved the rollout.
        expect(await phaseOf(rolloutOf[phase])).toBe(phase);
      }
      await page.context().close();
    });
  }

  it('offers a viewer no action in any phase', async () => {
    const page = await signIn('viewer');
    for (const phase of PHASES) {
      await open(page, phase);
      // The server still serves the table to a viewer; none of it is the viewer's to take.
      expect((await served('viewer', phase)).every((a) => RANK[a.role] > RANK.viewer)).toBe(true);
      expect(await buttons(page), `viewer in ${phase}`).toEqual([]);
      expect(await page.getByRole('list', { name: 'Actions not possible now' }).count()).toBe(0);
    }
    await page.context().close();
  });
});
