/**
 * The audit trail against a real fleet server: mutating calls are recorded with who, role, what, a digest of
 * the body and the answer (refusals too); reads are not. `edgefleet audit verify` passes on the untouched log
 * and, after an entry is edited in LevelDB directly while the fleet is down, names that entry.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../../fleet-server/audit/log.js';
import { Db } from '../../../fleet-server/store/db.js';
import { ApiError, startTestFleet, type TestFleet } from '../../support/fleet.js';
import { runCli } from '../../unit/fleet-server/cli/harness.js';

describe('audit trail', () => {
  let env: TestFleet;
  const cli = (args: string[]) =>
    runCli(args, { env: { EDGEFLEET_URL: env.fleet.httpUrl, EDGEFLEET_TOKEN: env.fleet.adminToken } });

  beforeAll(async () => {
    env = await startTestFleet();
  });
  afterAll(async () => env?.close());

  it('records every mutating call — who, role, what, body digest, answer — and no reads', async () => {
    const body = { tags: { site: 'lab' } };
    await env.api.request('POST', '/api/v1/enrollment-tokens', body);
    const viewer = await env.api.request('POST', '/api/v1/tokens', { role: 'viewer', name: 'auditor' });
    const asViewer = new (env.api.constructor as any)(env.fleet.httpUrl, viewer.token);
    await expect(asViewer.request('POST', '/api/v1/enrollment-tokens', {})).rejects.toBeInstanceOf(ApiError);
    await expect(env.api.request('PUT', '/api/v1/tasks/nope/retrain-policy', {})).rejects.toBeInstanceOf(
      ApiError,
    );
    await env.api.request('GET', '/api/v1/devices');

    const { entries } = (await env.api.request('GET', '/api/v1/audit')) as { entries: AuditEntry[] };
    expect(entries.map((e) => [e.actor, e.role, e.action, e.status])).toEqual([
      ['bootstrap-admin', 'admin', 'PUT /api/v1/tasks/nope/retrain-policy', 404],
      ['auditor', 'viewer', 'POST /api/v1/enrollment-tokens', 403],
      ['bootstrap-admin', 'admin', 'POST /api/v1/tokens', 201],
      ['bootstrap-admin', 'admin', 'POST /api/v1/enrollment-tokens', 201],
    ]);
    expect(entries.at(-1)!.digest).toBe(createHash('sha256').update(JSON.stringify(body)).digest('hex'));
    const listed = await cli(['audit', 'list', '--actor', 'auditor']);
    expect(listed.stdout).toMatch(/^3\s+\S+\s+auditor\s+viewer\s+POST \/api\/v1\/enrollment-tokens\s+403/m);
    // Reading the audit log is for operators.
    await expect(asViewer.request('GET', '/api/v1/audit')).rejects.toMatchObject({ status: 403 });
  });

  it('streams every recorded change live as server-sent events', async () => {
    const abort = new AbortController();
    const res = await fetch(`${env.fleet.httpUrl}/api/v1/events`, {
      headers: { authorization: `Bearer ${env.fleet.adminToken}` },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const until = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
        text += value;
      }
    };
    await until(/event: ready/);
    await env.api.request('POST', '/api/v1/enrollment-tokens', { tags: { site: 'sse' } });
    await until(/event: change\ndata: .*"action":"POST \/api\/v1\/enrollment-tokens".*\nid: \d+\n/);
    const data = JSON.parse(/event: change\ndata: (.*)\nid: \d+\n/.exec(text)![1]!);
    expect(data).toMatchObject({ actor: 'bootstrap-admin', target: 'enrollment-tokens', status: 201 });
    abort.abort();
    await reader.cancel().catch(() => undefined);
  });

  it('verify passes untouched, and names the entry edited in LevelDB directly', async () => {
    const ok = await cli(['audit', 'verify']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^audit log verifies: \d+ entries, head [0-9a-f]{16}…$/m);

    await env.restart(async () => {
      // The fleet is down: change who made entry 2, as someone with disk access might.
      const db = await Db.open(join(env.fleet.config.dataDir, 'db'));
      const audit = db.collection<AuditEntry>('audit');
      const second = (await audit.get('000000000002'))!;
      await audit.put('000000000002', { ...second, actor: 'someone-else' });
      await db.close();
    });
    const bad = await cli(['audit', 'verify']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/audit log does not verify: entry 2 \(key 000000000002\) was edited/);
  });
});
