/**
 * Enrollment: trade a one-time token for a device identity, MQTT credentials, the fleet's public signing
 * keys (pinned from then on) and the firmware profile; keep them in `<dataDir>/agent.json`, mode 0600.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { arch, hostname, platform } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { type EnrollResponse, EnrollResponseSchema } from '../shared/api/enroll.js';
import { EdgefleetError } from '../shared/errors.js';
import { AGENT_VERSION } from './config.js';
import { writeFileAtomic } from './files.js';

export const IDENTITY_FILE = 'agent.json';

export async function enroll(options: {
  server: string;
  token: string;
  dataDir: string;
  profile?: string | undefined;
  /** Tags to ask for; the token's tags win where both name a key. */
  tags?: Record<string, string> | undefined;
}): Promise<EnrollResponse> {
  const url = `${options.server.replace(/\/+$/, '')}/api/v1/enroll`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        token: options.token,
        profile: options.profile,
        tags: options.tags,
        facts: { hostname: hostname(), arch: arch(), platform: platform(), agentVersion: AGENT_VERSION },
      }),
    });
  } catch (err) {
    throw new EdgefleetError(
      'server_unreachable',
      `cannot reach the fleet server at ${options.server}: ${(err as Error).cause ?? (err as Error).message}`,
      { retryable: true },
    );
  }
  const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  if (!res.ok) {
    const detail = body?.error ? `${body.error.message} (${body.error.code})` : `HTTP ${res.status}`;
    throw new EdgefleetError('enrollment_refused', `the fleet refused the enrollment: ${detail}`);
  }
  const parsed = EnrollResponseSchema.safeParse(body);
  if (!parsed.success) {
    throw new EdgefleetError(
      'enrollment_invalid',
      `the fleet's enrollment answer is malformed: ${z.prettifyError(parsed.error)}`,
    );
  }
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(
    join(options.dataDir, IDENTITY_FILE),
    `${JSON.stringify(parsed.data, null, 2)}\n`,
    0o600,
  );
  return parsed.data;
}

export async function loadIdentity(dataDir: string): Promise<EnrollResponse> {
  const path = join(dataDir, IDENTITY_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new EdgefleetError(
      'not_enrolled',
      `no enrollment in ${path}: run 'edgefleet-agent enroll --server URL --token T' first`,
    );
  }
  const parsed = EnrollResponseSchema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new EdgefleetError('not_enrolled', `${path} is damaged: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
