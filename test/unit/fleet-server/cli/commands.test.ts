/**
 * Each command in-process: what it sends to the API, what the user sees, exit codes. The API is a real HTTP
 * server answering with canned bodies (harness.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RolloutPhase } from '../../../../fleet-server/cli/client.js';
import { allowedActions } from '../../../../fleet-server/rollouts/actions.js';
import { device, modelVersion, rollout, SHA } from './fixtures.js';
import { emptyDir, type FakeApi, jsonBody, only, runCli, startFakeApi } from './harness.js';

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

describe('tokens and enrollment tokens', () => {
  it('tokens create sends role and name and prints the token', async () => {
    api.on('POST /api/v1/tokens', {
      status: 201,
      json: { id: 'id1', token: 'ef_secret', role: 'viewer', name: 'ci' },
    });
    const run = await cli('tokens', 'create', '--role', 'viewer', '--name', 'ci');
    expect(run.code).toBe(0);
    expect(jsonBody(only(api))).toEqual({ role: 'viewer', name: 'ci' });
    expect(run.stdout).toBe("created viewer token 'ci' (id id1); it is shown only once:\nef_secret\n");
  });

  it('a 403 from the API is exit 1 with the server message', async () => {
    api.on('POST /api/v1/tokens', {
      status: 403,
      json: { error: { code: 'forbidden', message: 'this needs the admin role; the token has operator' } },
    });
    const run = await cli('tokens', 'create', '--role', 'admin');
    expect(run).toMatchObject({ code: 1, exits: [1], stdout: '' });
    expect(run.stderr).toBe(
      'edgefleet: this needs the admin role; the token has operator (forbidden, HTTP 403)\n',
    );
  });

  it('enroll-token create sends tags, profile and expiry and prints the agent command', async () => {
    api.on('POST /api/v1/enrollment-tokens', (req) => ({
      status: 201,
      json: {
        id: 'e1',
        token: 'eft_abc',
        expiresAt: '2026-01-08T12:00:00.000Z',
        tags: jsonBody(req).tags,
        profile: 'raspberry-pi-5',
      },
    }));
    const run = await cli(
      'enroll-token',
      'create',
      '--tags',
      'site=berlin,line=2',
      '--profile',
      'raspberry-pi-5',
      '--expires-in',
      '7d',
    );
    expect(run.code).toBe(0);
    expect(jsonBody(only(api))).toEqual({
      tags: { site: 'berlin', line: '2' },
      profile: 'raspberry-pi-5',
      expiresInSeconds: 604_800,
    });
    expect(run.stdout).toContain('token:    eft_abc');
    expect(run.stdout).toContain('tags:     line=2,site=berlin');
    expect(run.stdout).toContain(`  edgefleet-agent enroll --server ${api.url} --token eft_abc\n`);
  });

  it('enroll-token create defaults to no tags and 24 hours', async () => {
    api.on('POST /api/v1/enrollment-tokens', {
      status: 201,
      json: { id: 'e1', token: 'eft_abc', expiresAt: 'x', tags: {}, profile: null },
    });
    const run = await cli('enroll-token', 'create', '--json');
    expect(run.code).toBe(0);
    expect(jsonBody(only(api))).toEqual({ tags: {}, expiresInSeconds: 86_400 });
    expect(JSON.parse(run.stdout)).toEqual({
      id: 'e1',
      token: 'eft_abc',
      expiresAt: 'x',
      tags: {},
      profile: null,
    });
  });
});

describe('devices', () => {
  it('list prints the table and passes filters', async () => {
    api.on('GET /api/v1/devices', { json: { devices: [device()] } });
    const run = await cli('devices', 'list', '--tag', 'site=berlin', '--tag', 'line=2', '--status', 'online');
    expect(run.code).toBe(0);
    const req = only(api);
    expect(req.query.getAll('tag')).toEqual(['site=berlin', 'line=2']);
    expect(req.query.get('status')).toBe('online');
    expect(run.stdout.split('\n')[0]).toMatch(/^ID\s+STATUS\s+PROFILE\s+MODELS\s+TAGS\s+LAST SEEN$/);
    expect(run.stdout).toContain('dev-aaa111');
    expect(run.stdout).toContain('30s ago');
  });

  it('show prints the device; an unknown id is exit 1 with the API message', async () => {
    api.on('GET /api/v1/devices/dev-aaa111', { json: device() });
    const shown = await cli('devices', 'show', 'dev-aaa111');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('id:         dev-aaa111');
    expect(shown.stdout).toMatch(/demo\s+2\s+cpu/);

    const missing = await cli('devices', 'show', 'dev-zzz999');
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toBe(
      'edgefleet: no route for GET /api/v1/devices/dev-zzz999 (not_found, HTTP 404)\n',
    );
  });

  it('show renders telemetry when the device has reported some', async () => {
    api.on('GET /api/v1/devices/dev-aaa111', {
      json: device({
        telemetry: {
          v: 1,
          type: 'telemetry',
          id: 't1',
          ts: Date.parse('2026-01-01T11:59:50.000Z'),
          windowMs: 10_000,
          models: [
            {
              name: 'demo',
              version: 2,
              executionProvider: 'cpu',
              requests: 42,
              errors: 1,
              latencyMs: { p50: 1.25, p95: 2.5, p99: 4 },
            },
          ],
          process: { rssBytes: 64 * 1024 * 1024, heapUsedBytes: 1, cpuPercent: 12.5, uptimeS: 100 },
          device: { loadAvg1: 0.5, freeMemBytes: 1024 ** 3, totalMemBytes: 4 * 1024 ** 3 },
        },
      }),
    });
    const run = await cli('devices', 'show', 'dev-aaa111');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('telemetry (10s ago, window 10s)');
    expect(run.stdout).toContain('rss 64.0 MiB, cpu 12.5%');
    expect(run.stdout).toMatch(/demo@2\s+cpu\s+42\s+1\s+1\.25\s+2\.50\s+4\.00/);
  });
});

describe('models', () => {
  function modelFile(bytes = Buffer.from([8, 7, 18, 3, 0, 1, 2])): { dir: string; path: string } {
    const dir = emptyDir();
    const path = join(dir, 'model.onnx');
    writeFileSync(path, bytes);
    return { dir, path };
  }

  it('push sends the raw bytes and prints the pushed version', async () => {
    api.on('POST /api/v1/models/demo/versions', { status: 201, json: modelVersion() });
    const { path } = modelFile();
    const run = await cli('models', 'push', path, '--name', 'demo', '--expires-in-days', '30');
    expect(run.code).toBe(0);
    const req = only(api);
    expect(req.headers['content-type']).toBe('application/octet-stream');
    expect([...req.body]).toEqual([8, 7, 18, 3, 0, 1, 2]);
    expect(req.query.get('expiresInDays')).toBe('30');
    expect(run.stdout).toBe(`pushed demo v3 (sha256 ${SHA}, 535 bytes)\n`);
  });

  it('push with --sample-input sends multipart with the sample text', async () => {
    api.on('POST /api/v1/models/demo/versions', { status: 201, json: modelVersion() });
    const { dir } = modelFile();
    const sample = '{"inputs":[{"name":"input","shape":[2,4]}]}';
    writeFileSync(join(dir, 'sample.json'), sample);
    // A relative path resolves against the working directory.
    const run = await runCli(
      [
        '--url',
        api.url,
        '--token',
        't',
        'models',
        'push',
        'model.onnx',
        '--name',
        'demo',
        '--sample-input',
        'sample.json',
      ],
      { cwd: dir },
    );
    expect(run.code).toBe(0);
    const req = only(api);
    const form = await new Request('http://x/', {
      method: 'POST',
      headers: { 'content-type': String(req.headers['content-type']) },
      body: req.body,
    }).formData();
    expect(form.get('sampleInput')).toBe(sample);
    expect(Buffer.from(await (form.get('model') as File).arrayBuffer())).toEqual(
      Buffer.from([8, 7, 18, 3, 0, 1, 2]),
    );
  });

  it('push of a missing file fails naming the path, before any request', async () => {
    const missing = join(emptyDir(), 'nope.onnx');
    const run = await cli('models', 'push', missing, '--name', 'demo');
    expect(run).toMatchObject({ code: 1, stdout: '' });
    expect(run.stderr).toBe(`edgefleet: cannot read model file ${missing}: no such file\n`);
    expect(api.requests).toEqual([]);
  });

  it('push of a directory fails naming the path', async () => {
    const dir = emptyDir();
    const run = await cli('models', 'push', dir, '--name', 'demo');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`edgefleet: cannot read model file ${dir}: it is a directory\n`);
  });

  it('a sample input that is not JSON fails naming the file, before any request', async () => {
    const { dir, path } = modelFile();
    const sample = join(dir, 'sample.json');
    writeFileSync(sample, '{inputs: oops');
    const run = await cli('models', 'push', path, '--name', 'demo', '--sample-input', sample);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^edgefleet: sample input ${sample} is not valid JSON: .+\\n$`));
    expect(api.requests).toEqual([]);

    const absent = await cli('models', 'push', path, '--name', 'demo', '--sample-input', join(dir, 'x.json'));
    expect(absent.stderr).toBe(`edgefleet: cannot read sample input ${join(dir, 'x.json')}: no such file\n`);
  });

  it('a server-side rejection (golden I/O unavailable) is shown as the server says it', async () => {
    const message =
      "cannot compute golden outputs: input 'input' has symbolic dims [batch]; pass --sample-input FILE";
    api.on('POST /api/v1/models/demo/versions', {
      status: 422,
      json: { error: { code: 'golden_unavailable', message } },
    });
    const run = await cli('models', 'push', modelFile().path, '--name', 'demo');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`edgefleet: ${message} (golden_unavailable, HTTP 422)\n`);
  });

  it('list and show', async () => {
    api.on('GET /api/v1/models', {
      json: {
        models: [
          {
            name: 'demo',
            latestVersion: 3,
            versionCount: 3,
            updatedAt: '2026-01-01T10:00:00.000Z',
            production: 2,
            candidate: null,
          },
        ],
      },
    });
    api.on('GET /api/v1/models/demo/versions/3', { json: modelVersion() });
    const list = await cli('models', 'list');
    expect(list.stdout).toBe(
      'NAME  LATEST  PRODUCTION  CANDIDATE  VERSIONS  UPDATED\n' +
        'demo  3       2           -          3         2026-01-01T10:00:00.000Z\n',
    );
    const show = await cli('models', 'show', 'demo@3');
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`sha256:     ${SHA}`);
    expect(api.requests.map((r) => r.path)).toEqual(['/api/v1/models', '/api/v1/models/demo/versions/3']);
  });
});

describe('models: variants', () => {
  const fp16 = (v = modelVersion()) => ({
    variant: 'fp16',
    createdAt: '2026-01-02T10:00:00.000Z',
    createdBy: 'ops',
    manifest: {
      ...v.manifest,
      variant: 'fp16',
      artifact: { ...v.manifest.artifact, sha256: 'f'.repeat(64) },
    },
    artifact: { sha256: 'f'.repeat(64), size: 300 },
  });
  const withFp16 = () => {
    const v = modelVersion();
    return modelVersion({ variants: [...v.variants, fp16(v)] });
  };
  const file = () => {
    const path = join(emptyDir(), 'model.onnx');
    writeFileSync(path, Buffer.from([8, 7]));
    return path;
  };

  it('push --variant creates a version with that variant', async () => {
    api.on('POST /api/v1/models/demo/versions', { status: 201, json: modelVersion() });
    const run = await cli('models', 'push', file(), '--name', 'demo', '--variant', 'fp16');
    expect(run.code).toBe(0);
    expect(only(api).query.get('variant')).toBe('fp16');
    expect(run.stdout).toBe(`pushed demo v3 variant fp16 (sha256 ${SHA}, 535 bytes)\n`);
  });

  it('push --add-to --variant adds the variant to that version', async () => {
    api.on('POST /api/v1/models/demo/versions/3/variants/fp16', { status: 201, json: withFp16() });
    const run = await cli('models', 'push', file(), '--name', 'demo', '--add-to', '3', '--variant', 'fp16');
    expect(run.code).toBe(0);
    const req = only(api);
    expect(req.headers['content-type']).toBe('application/octet-stream');
    expect(req.query.get('variant')).toBeNull();
    expect(run.stdout).toBe(
      `added variant fp16 to demo v3 (sha256 ${'f'.repeat(64)}, 300 bytes); variants: default, fp16\n`,
    );
  });

  it('push --add-to without --variant, or a bad variant name, fails before any request', async () => {
    const path = file();
    const noVariant = await cli('models', 'push', path, '--name', 'demo', '--add-to', '3');
    expect(noVariant.code).toBe(1);
    expect(noVariant.stderr).toBe(
      'edgefleet: --add-to adds a variant to an existing version: name the variant with --variant\n',
    );
    const bad = await cli('models', 'push', path, '--name', 'demo', '--variant', 'FP16');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/variant 'FP16' must start with a lowercase letter/);
    const badVersion = await cli(
      'models',
      'push',
      path,
      '--name',
      'demo',
      '--add-to',
      'latest',
      '--variant',
      'x',
    );
    expect(badVersion.stderr).toMatch(
      /version 'latest' must be a positive integer or production \/ candidate/,
    );
    expect(api.requests).toEqual([]);
  });

  it('a refused variant is shown as the server says it', async () => {
    const message = "demo@3 already has a variant 'fp16'; push a new version to change it";
    api.on('POST /api/v1/models/demo/versions/3/variants/fp16', {
      status: 409,
      json: { error: { code: 'variant_exists', message } },
    });
    const run = await cli('models', 'push', file(), '--name', 'demo', '--add-to', '3', '--variant', 'fp16');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`edgefleet: ${message} (variant_exists, HTTP 409)\n`);
  });

  it('versions lists each version with its variants and aliases; show lists the variants', async () => {
    api.on('GET /api/v1/models/demo/versions', {
      json: { versions: [modelVersion({ version: 2 }), withFp16()] },
    });
    api.on('GET /api/v1/models/demo/aliases', {
      json: { aliases: { production: { name: 'demo', alias: 'production', version: 2 } } },
    });
    const run = await cli('models', 'versions', 'demo');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      'VERSION  VARIANTS       ALIASES     CREATED                   BY\n' +
        '2        default        production  2026-01-01T10:00:00.000Z  bootstrap-admin\n' +
        '3        default, fp16  -           2026-01-01T10:00:00.000Z  bootstrap-admin\n',
    );

    api.on('GET /api/v1/models/demo/versions/3', { json: withFp16() });
    const show = await cli('models', 'show', 'demo@3');
    expect(show.stdout).toContain('variants:   default, fp16');
    expect(show.stdout).toMatch(new RegExp(`fp16\\s+${'f'.repeat(64)}\\s+300 B`));
  });

  it('rollout status shows which variant each device installs when they differ', async () => {
    const r = rollout(['active', 'pending']);
    r.devices[1]!.variant = 'fp16';
    api.on('GET /api/v1/rollouts/ro-1', { json: r });
    const run = await cli('rollout', 'status', 'ro-1');
    expect(run.stdout).toMatch(/DEVICE\s+VARIANT\s+STATE\s+PROVIDER\s+REASON/);
    expect(run.stdout).toMatch(/dev-000\s+default\s+active\s+cpu/);
    expect(run.stdout).toMatch(/dev-100\s+fp16\s+pending/);
  });
});

describe('rollouts', () => {
  it('create by devices sends the ids and prints the rollout id', async () => {
    api.on('POST /api/v1/rollouts', { status: 201, json: rollout(['pending', 'pending']) });
    const run = await cli('rollout', 'create', '--model', 'demo@3', '--devices', 'dev-000,dev-100');
    expect(run.code).toBe(0);
    expect(jsonBody(only(api))).toEqual({
      model: { name: 'demo', version: 3 },
      targets: { devices: ['dev-000', 'dev-100'] },
      strategy: 'all-at-once',
    });
    expect(run.stdout).toContain(
      'rollout ro-1 created: demo@3 to 2 device(s), all-at-once, phase progressing',
    );
  });

  it('create a canary with steps, bake, window and gates sends them all', async () => {
    api.on('POST /api/v1/rollouts', { status: 201, json: rollout(['pending', 'waiting']) });
    const run = await cli(
      'rollout',
      'create',
      '--model',
      'demo@candidate',
      '--tags',
      'site=berlin',
      '--strategy',
      'canary',
      '--steps',
      '10,50,100',
      '--bake',
      '10m',
      '--window',
      '2m',
      '--gate',
      'p95_latency_ratio<=1.2',
      '--gate',
      'error_rate<=0.02/200',
      '--device-timeout',
      '1h',
      '--on-device-timeout',
      'skip',
    );
    expect(run.code, run.stderr).toBe(0);
    expect(jsonBody(only(api))).toEqual({
      model: { name: 'demo', version: 'candidate' },
      targets: { tags: { site: 'berlin' } },
      strategy: 'canary',
      steps: [10, 50, 100],
      bakeS: 600,
      windowS: 120,
      gates: ['p95_latency_ratio<=1.2', 'error_rate<=0.02/200'],
      deviceTimeoutS: 3600,
      onDeviceTimeout: 'skip',
    });
  });

  it.each(['pause', 'resume', 'abort', 'rollback', 'promote'])('%s posts the action', async (action) => {
    api.on(`POST /api/v1/rollouts/ro-1/${action}`, { json: rollout(['active']) });
    const args = ['rollout', action, 'ro-1'];
    if (action === 'abort') args.push('--reason', 'too slow');
    const run = await cli(...args);
    expect(run.code, run.stderr).toBe(0);
    expect(jsonBody(only(api))).toEqual(action === 'abort' ? { reason: 'too slow' } : {});
    expect(run.stdout).toBe(`rollout ro-1: ${action} accepted, phase succeeded\n`);
  });

  it('create by tags sends the tags', async () => {
    api.on('POST /api/v1/rollouts', { status: 201, json: rollout() });
    const run = await cli('rollout', 'create', '--model', 'demo@3', '--tags', 'site=berlin');
    expect(run.code).toBe(0);
    expect(jsonBody(only(api)).targets).toEqual({ tags: { site: 'berlin' } });
  });

  it('create with no matching device shows the API reason', async () => {
    api.on('POST /api/v1/rollouts', {
      status: 400,
      json: { error: { code: 'no_targets', message: 'no device matches tags site=nowhere' } },
    });
    const run = await cli('rollout', 'create', '--model', 'demo@3', '--tags', 'site=nowhere');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('edgefleet: no device matches tags site=nowhere (no_targets, HTTP 400)\n');
  });

  it('status prints phase, counts and the device table', async () => {
    api.on('GET /api/v1/rollouts/ro-1', { json: rollout(['active', 'failed']) });
    const run = await cli('rollout', 'status', 'ro-1');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      'phase failed  at 100%  (total 2, pending 0, in progress 0, active 1, failed 1)',
    );
    expect(run.stdout).toMatch(/DEVICE\s+STATE\s+PROVIDER\s+REASON/);
    expect(run.stdout).toMatch(/dev-100\s+failed\s+-\s+signature_invalid: signature does not match/);
  });

  it('status lists the actions the phase allows, as the server serves them', async () => {
    // What an operator may do in each phase (PRODUCT.md): abort rolls back, so it is gone once the rollout
    // finished or stopped, where only rollback remains; nothing is left once it is rolled back.
    const expected: [RolloutPhase, string][] = [
      ['progressing', 'actions: pause, abort, rollback, promote (admin)'],
      ['paused', 'actions: resume, abort, rollback, promote (admin)'],
      ['succeeded', 'actions: rollback'],
      ['failed', 'actions: rollback'],
      ['aborted', 'actions: none in this phase'],
      ['rolled_back', 'actions: none in this phase'],
    ];
    for (const [phase, line] of expected) {
      const served = rollout(['active'], { phase, actions: allowedActions(phase) });
      api.on('GET /api/v1/rollouts/ro-1', { json: served });
      const run = await cli('rollout', 'status', 'ro-1');
      expect(run.code).toBe(0);
      expect(run.stdout.split('\n'), phase).toContain(line);
    }
  });

  it('status renders the served actions, not rules of its own', async () => {
    // A server whose table differs (here: one that allows nothing but a resume while progressing).
    const actions = allowedActions('progressing').map((a) => ({ ...a, allowed: a.action === 'resume' }));
    api.on('GET /api/v1/rollouts/ro-1', { json: rollout(['pending'], { actions }) });
    const run = await cli('rollout', 'status', 'ro-1');
    expect(run.stdout).toMatch(/^phase progressing .*\nactions: resume\n/m);
  });

  it('status --watch polls every second until the phase is terminal, printing changes', async () => {
    const sequence = [
      rollout(['pending', 'pending']),
      rollout(['downloading', 'pending']),
      rollout(['downloading', 'pending']),
      rollout(['active', 'failed']),
    ];
    let served = 0;
    api.on('GET /api/v1/rollouts/ro-1', () => ({ json: sequence[Math.min(served++, sequence.length - 1)] }));
    const sleeps: number[] = [];
    const run = await runCli(['--url', api.url, '--token', 't', 'rollout', 'status', 'ro-1', '--watch'], {
      io: {
        sleep: async (ms) => {
          sleeps.push(ms);
        },
      },
    });
    expect(run.code).toBe(0);
    expect(served).toBe(4);
    expect(sleeps).toEqual([1000, 1000, 1000]);
    const lines = run.stdout.split('\n');
    expect(lines).toContain('12:00:00  dev-000  pending -> downloading');
    expect(lines).toContain('12:00:00  dev-000  downloading -> active on cpu');
    expect(lines).toContain(
      '12:00:00  dev-100  pending -> failed: signature_invalid: signature does not match',
    );
    expect(lines).toContain(
      '12:00:00  phase progressing -> failed  (total 2, pending 0, in progress 0, active 1, failed 1)',
    );
    // The unchanged poll printed nothing: each change appears once.
    expect(lines.filter((l) => l.includes('pending -> downloading'))).toHaveLength(1);
    // Then the final state in full.
    expect(run.stdout.trimEnd().split('\n').at(-1)).toMatch(
      /^dev-100\s+failed\s+-\s+signature_invalid: signature does not match$/,
    );
  });

  it('status --watch on a finished rollout prints it once without polling', async () => {
    api.on('GET /api/v1/rollouts/ro-1', { json: rollout(['active']) });
    const run = await cli('rollout', 'status', 'ro-1', '--watch');
    expect(run.code).toBe(0);
    expect(api.requests).toHaveLength(1);
    expect(run.stdout.match(/phase succeeded/g)).toHaveLength(1);
  });

  it('status --watch --json prints only the final rollout as one JSON document', async () => {
    const sequence = [rollout(['pending']), rollout(['active'])];
    let served = 0;
    api.on('GET /api/v1/rollouts/ro-1', () => ({ json: sequence[Math.min(served++, 1)] }));
    const run = await cli('rollout', 'status', 'ro-1', '--watch', '--json');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(sequence[1]);
  });

  it('list prints a table, newest first as the API returns them', async () => {
    api.on('GET /api/v1/rollouts', {
      json: { rollouts: [rollout(['active'], { id: 'ro-2' }), rollout(['failed'], { id: 'ro-1' })] },
    });
    const run = await cli('rollout', 'list');
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+MODEL\s+PHASE\s+ACTIVE\s+FAILED\s+TARGETS\s+CREATED$/);
    expect(lines[1]).toMatch(/^ro-2\s+demo@3\s+succeeded\s+1\/1\s+0\s+tags site=berlin/);
    expect(lines[2]).toMatch(/^ro-1\s+demo@3\s+failed\s+0\/1\s+1/);
  });
});
