/**
 * The CLI in-process, across commands: where the URL and token come from, usage errors (exit 2), and `--json`
 * printing exactly one document. The API is a real HTTP server answering with canned bodies (harness.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { device, modelVersion, rollout } from './fixtures.js';
import { emptyDir, type FakeApi, only, runCli, startFakeApi } from './harness.js';

let api: FakeApi;
beforeEach(async () => {
  api = await startFakeApi();
});
afterEach(async () => {
  await api.close();
});

/** Run against the fake API with a token, so requests are authenticated. */
function cli(...args: string[]) {
  return runCli(['--url', api.url, '--token', 'tok-op', ...args]);
}

describe('connection settings', () => {
  beforeEach(() => {
    api.on('GET /api/v1/devices', { json: { devices: [] } });
  });

  it('takes --url and --token over the environment', async () => {
    const run = await runCli(['--url', api.url, '--token', 'from-flag', 'devices', 'list'], {
      env: { EDGEFLEET_URL: 'http://127.0.0.1:1', EDGEFLEET_TOKEN: 'from-env' },
    });
    expect(run.code).toBe(0);
    expect(only(api).headers['authorization']).toBe('Bearer from-flag');
  });

  it('falls back to EDGEFLEET_URL and EDGEFLEET_TOKEN', async () => {
    const run = await runCli(['devices', 'list'], {
      env: { EDGEFLEET_URL: api.url, EDGEFLEET_TOKEN: 'from-env' },
    });
    expect(run.code).toBe(0);
    expect(only(api).headers['authorization']).toBe('Bearer from-env');
  });

  it('falls back to ./data/admin-token in the working directory', async () => {
    const cwd = emptyDir();
    mkdirSync(join(cwd, 'data'));
    writeFileSync(join(cwd, 'data', 'admin-token'), 'ef_admin\n');
    const run = await runCli(['devices', 'list'], { env: { EDGEFLEET_URL: api.url }, cwd });
    expect(run.code).toBe(0);
    expect(only(api).headers['authorization']).toBe('Bearer ef_admin');
  });

  it('global options may also follow the subcommand', async () => {
    const run = await runCli(['devices', 'list', '--url', api.url, '--token', 'late']);
    expect(run.code).toBe(0);
    expect(only(api).headers['authorization']).toBe('Bearer late');
  });

  it('a 401 without any token says how to give one', async () => {
    api.on('GET /api/v1/devices', {
      status: 401,
      json: { error: { code: 'unauthenticated', message: 'a valid operator token is required' } },
    });
    const run = await runCli(['--url', api.url, 'devices', 'list']);
    expect(run.code).toBe(1);
    expect(only(api).headers['authorization']).toBeUndefined();
    expect(run.stderr).toBe(
      'edgefleet: a valid operator token is required (unauthenticated, HTTP 401) — no token was given: pass --token, set EDGEFLEET_TOKEN, or run where ./data/admin-token exists\n',
    );
  });

  it('a bad --url is a usage error', async () => {
    const run = await runCli(['--url', 'nope', 'devices', 'list']);
    expect(run).toMatchObject({ code: 2, exits: [2], stdout: '' });
    expect(run.stderr).toBe("edgefleet: --url: 'nope' is not a URL (expected e.g. http://127.0.0.1:8080)\n");
  });

  it('an unreachable server is exit 1 naming the URL', async () => {
    const url = api.url;
    await api.close();
    const run = await runCli(['--url', url, 'devices', 'list']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(`^edgefleet: cannot reach the fleet server at ${url}: connect ECONNREFUSED .*\\n$`),
    );
    api = await startFakeApi(); // afterEach closes it
  });
});

describe('usage', () => {
  it('--help exits 0 and explains where the token comes from', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.exits).toEqual([0]);
    expect(run.stdout).toContain('./data/admin-token');
    expect(run.stdout).toContain('EDGEFLEET_URL');
    expect(run.stdout).toMatch(/rollout/);
  });

  it.each([
    [['frobnicate'], "unknown command 'frobnicate'"],
    [['devices', 'list', '--bogus'], "unknown option '--bogus'"],
    [
      ['devices', 'list', '--status', 'sleeping'],
      "argument 'sleeping' is invalid. Allowed choices are online, offline",
    ],
    [['tokens', 'create'], "required option '--role <role>' not specified"],
    [['tokens', 'create', '--role', 'root'], 'Allowed choices are viewer, operator, admin'],
    [['enroll-token', 'create', '--tags', 'site'], "tag 'site' must look like key=value"],
    [['enroll-token', 'create', '--expires-in', '3y'], "duration '3y' must be a number with a unit"],
    [['models', 'show', 'demo'], "'demo' must look like NAME@VERSION"],
    [['models', 'show', 'demo@zero'], "version 'zero' in 'demo@zero'"],
    [['models', 'push', 'm.onnx'], "required option '--name <name>' not specified"],
    [['models', 'push', 'm.onnx', '--name', 'Bad'], "model name 'Bad'"],
    [
      ['models', 'push', 'm.onnx', '--name', 'demo', '--expires-in-days', '0'],
      "'0' must be a positive number",
    ],
    [['rollout', 'create', '--model', 'demo@1'], 'give exactly one of --devices or --tags'],
    [['rollout', 'create', '--model', 'demo@1', '--devices', 'a', '--tags', 'x=y'], 'give exactly one of'],
    [['rollout', 'create', '--model', 'demo', '--devices', 'a'], "'demo' must look like NAME@VERSION"],
    [
      ['rollout', 'create', '--model', 'demo@1', '--devices', 'a', '--strategy', 'rainbow'],
      'Allowed choices are all-at-once, canary, blue-green',
    ],
    [
      ['rollout', 'create', '--model', 'demo@1', '--devices', 'a', '--steps', '5,25,100'],
      '--steps and --bake are for --strategy canary',
    ],
    [
      [
        'rollout',
        'create',
        '--model',
        'demo@1',
        '--devices',
        'a',
        '--strategy',
        'canary',
        '--steps',
        '50,20',
      ],
      "'50,20' must increase",
    ],
    [
      ['rollout', 'create', '--model', 'demo@1', '--devices', 'a', '--bake', '10 minutes'],
      "duration '10 minutes'",
    ],
    [['rollout', 'pause'], "missing required argument 'id'"],
    [['serve', '--http-port', '99999'], "port '99999' must be an integer"],
  ])('%j is a usage error (exit 2): %s', async (args, message) => {
    const run = await cli(...args);
    expect(run.code).toBe(2);
    expect(run.exits).toEqual([2]);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^edgefleet: /);
    expect(run.stderr).toContain(message);
    expect(api.requests).toEqual([]);
  });

  it('a noun without a verb shows its help and exits 2', async () => {
    const run = await cli('devices');
    expect(run.code).toBe(2);
    expect(run.stdout + run.stderr).toContain('list');
  });
});

describe('--json', () => {
  const canned: Record<string, unknown> = {
    'GET /api/v1/devices': { devices: [device()] },
    'GET /api/v1/devices/dev-aaa111': device(),
    'GET /api/v1/models': { models: [{ name: 'demo', latestVersion: 3, versionCount: 3, updatedAt: 'x' }] },
    'GET /api/v1/models/demo/versions/3': modelVersion(),
    'GET /api/v1/rollouts': { rollouts: [rollout()] },
    'GET /api/v1/rollouts/ro-1': rollout(),
    'POST /api/v1/rollouts': rollout(),
    'POST /api/v1/tokens': { id: 'i', token: 't', role: 'admin', name: 'n' },
  };

  it.each([
    [['devices', 'list'], 'GET /api/v1/devices'],
    [['devices', 'show', 'dev-aaa111'], 'GET /api/v1/devices/dev-aaa111'],
    [['models', 'list'], 'GET /api/v1/models'],
    [['models', 'show', 'demo@3'], 'GET /api/v1/models/demo/versions/3'],
    [['rollout', 'list'], 'GET /api/v1/rollouts'],
    [['rollout', 'status', 'ro-1'], 'GET /api/v1/rollouts/ro-1'],
    [['rollout', 'create', '--model', 'demo@3', '--tags', 'a=b'], 'POST /api/v1/rollouts'],
    [['tokens', 'create', '--role', 'admin'], 'POST /api/v1/tokens'],
  ])('%j prints exactly the API response as one JSON document', async (args, route) => {
    api.on(route, { json: canned[route] });
    const run = await cli(...args, '--json');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).toEqual(canned[route]);
  });

  it('errors under --json leave stdout empty', async () => {
    const run = await cli('devices', 'show', 'dev-nope', '--json');
    expect(run).toMatchObject({ code: 1, stdout: '' });
    expect(run.stderr).toContain('(not_found, HTTP 404)');
  });
});
