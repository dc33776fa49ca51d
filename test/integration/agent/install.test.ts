/**
 * deploy/install.sh against a real fleet: installed into a temp prefix, with `systemctl`, `groupadd`,
 * `useradd`, `chown` and `runuser` replaced by shims first on PATH that record their arguments (runuser then
 * runs its command, so enrollment really happens, by the agent's own `enroll`). The binary is a wrapper
 * script around bin/edgefleet-agent.js; install.sh takes a script or the single executable alike.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFleet, type TestFleet } from '../../support/fleet.js';
import { runToExit } from '../../support/process.js';

const INSTALL = fileURLToPath(new URL('../../../deploy/install.sh', import.meta.url));
const UNIT = fileURLToPath(new URL('../../../deploy/edgefleet-agent.service', import.meta.url));
const AGENT_BIN = fileURLToPath(new URL('../../../bin/edgefleet-agent.js', import.meta.url));

/**
 * Each shim records `<name> <args>` to $SHIM_LOG. groupadd/useradd leave a marker in $SHIM_STATE that the
 * getent/id shims answer from (so a second run finds the user), and runuser runs what follows `--`.
 */
const RECORD = 'printf "%s\\n" "$(basename "$0") $*" >> "$SHIM_LOG"';
const realPath = (command: string) =>
  execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim();
const SHIMS: Record<string, string> = {
  systemctl: RECORD,
  chown: RECORD,
  groupadd: `${RECORD}\nfor last; do :; done\ntouch "$SHIM_STATE/group-$last"`,
  useradd: `${RECORD}\nfor last; do :; done\ntouch "$SHIM_STATE/user-$last"`,
  getent: `[ "$1" = group ] && [ -e "$SHIM_STATE/group-$2" ] && exit 0\n[ "$1" = passwd ] && [ -e "$SHIM_STATE/user-$2" ] && exit 0\nexec ${realPath('getent')} "$@"`,
  // Root (as a real install runs), whoever runs the tests: chown and runuser are shims anyway.
  id: `[ "$#" = 1 ] && [ "$1" = -u ] && echo 0 && exit 0\n[ "$#" = 2 ] && [ "$1" = -u ] && [ -e "$SHIM_STATE/user-$2" ] && echo 999 && exit 0\nexec ${realPath('id')} "$@"`,
  runuser: `${RECORD}\nwhile [ "$1" != -- ]; do shift; done\nshift\nexec "$@"`,
};

let env: TestFleet;
let dir: string;
let shimDir: string;
let wrapper: string;
let cases = 0;

beforeAll(async () => {
  env = await startTestFleet();
  dir = await mkdtemp(join(tmpdir(), 'edgefleet-install-'));
  shimDir = join(dir, 'shims');
  await mkdir(shimDir);
  for (const [name, body] of Object.entries(SHIMS)) await script(join(shimDir, name), body);
  wrapper = join(dir, 'edgefleet-agent-wrapper');
  await script(wrapper, `exec "${process.execPath}" "${AGENT_BIN}" "$@"`);
});

afterAll(async () => {
  await env?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function script(path: string, body: string): Promise<void> {
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
}

interface Case {
  prefix: string;
  log: string;
  /** Run install.sh; `extraPath` goes first on PATH (more shims). */
  install(args: string[], options?: { env?: Record<string, string>; extraPath?: string }): Promise<Result>;
  /** The shim calls recorded so far, one `<command> <args>` per line; cleared by `take`. */
  take(): Promise<string[]>;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A fresh prefix and shim log for one test. */
async function newCase(): Promise<Case> {
  const base = join(dir, `case-${++cases}`);
  const prefix = join(base, 'root');
  const log = join(base, 'calls.log');
  await mkdir(base);
  await writeFile(log, '');
  return {
    prefix,
    log,
    async install(args, options = {}) {
      const path = [options.extraPath, shimDir, process.env.PATH].filter(Boolean).join(':');
      return runToExit('sh', [INSTALL, ...args], {
        env: { ...process.env, PATH: path, SHIM_LOG: log, SHIM_STATE: base, ...options.env },
      });
    },
    async take() {
      const lines = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
      await writeFile(log, '');
      return lines;
    },
  };
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

async function devicesTagged(key: string, value: string): Promise<any[]> {
  return (await env.api.request('GET', `/api/v1/devices?tag=${key}=${value}`)).devices;
}

describe('deploy/install.sh', () => {
  it('installs the executable, unit and private data dir, enrolls as the service user, starts the unit', async () => {
    const c = await newCase();
    const { token } = await env.api.enrollmentToken({ tags: { site: 'lab', case: 'fresh' } });
    const result = await c.install([
      '--binary',
      wrapper,
      '--server',
      env.fleet.httpUrl,
      '--token',
      token,
      '--profile',
      'x86_64-cpu',
      '--tags',
      'ring=canary,site=elsewhere',
      '--prefix',
      c.prefix,
    ]);
    expect(result.code, result.stderr).toBe(0);

    const bin = join(c.prefix, 'usr/local/bin/edgefleet-agent');
    const unit = join(c.prefix, 'etc/systemd/system/edgefleet-agent.service');
    const data = join(c.prefix, 'var/lib/edgefleet-agent');
    const cache = join(c.prefix, 'var/cache/edgefleet-agent');
    expect(await readFile(bin, 'utf8')).toBe(await readFile(wrapper, 'utf8'));
    expect(await mode(bin)).toBe(0o755);
    expect(await readFile(unit, 'utf8')).toBe(await readFile(UNIT, 'utf8'));
    expect(await mode(unit)).toBe(0o644);
    expect(await mode(data)).toBe(0o700);
    expect(await mode(cache)).toBe(0o700);
    const identity = JSON.parse(await readFile(join(data, 'agent.json'), 'utf8'));
    expect(await mode(join(data, 'agent.json'))).toBe(0o600);

    expect(await c.take()).toEqual([
      'groupadd --system edgefleet',
      'useradd --system --no-create-home --home-dir /var/lib/edgefleet-agent --shell /usr/sbin/nologin --gid edgefleet edgefleet',
      `chown edgefleet:edgefleet ${data}`,
      `chown edgefleet:edgefleet ${cache}`,
      `runuser -u edgefleet -- env EDGEFLEET_CACHE_DIR=${cache} ORT_DISABLE_TELEMETRY=1 ${bin} enroll --server ${env.fleet.httpUrl} --token ${token} --data-dir ${data} --profile x86_64-cpu --tags ring=canary,site=elsewhere`,
      'systemctl daemon-reload',
      'systemctl enable --now edgefleet-agent',
    ]);
    expect(result.stdout).toContain(`enrolled device ${identity.deviceId} (profile x86_64-cpu)`);

    // The fleet knows the device: the profile asked for, the token's tags, and the device's own tags where
    // they do not clash with the token's.
    expect(await env.api.device(identity.deviceId)).toMatchObject({
      id: identity.deviceId,
      profile: 'x86_64-cpu',
      tags: { site: 'lab', case: 'fresh', ring: 'canary' },
    });
  });

  it('is idempotent: a second run keeps the enrollment, a new binary restarts the agent', async () => {
    const c = await newCase();
    const { token } = await env.api.enrollmentToken({ tags: { case: 'twice' } });
    const args = ['--binary', wrapper, '--server', env.fleet.httpUrl, '--token', token, '--prefix', c.prefix];
    const first = await c.install(args);
    expect(first.code, first.stderr).toBe(0);
    const [device] = await devicesTagged('case', 'twice');
    await c.take();

    const second = await c.install(args);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`already enrolled as ${device.id}`);
    const calls = await c.take();
    expect(calls.filter((l) => /^(runuser|groupadd|useradd) /.test(l))).toEqual([]);
    expect(calls.filter((l) => l.startsWith('systemctl'))).toEqual([
      'systemctl daemon-reload',
      'systemctl enable --now edgefleet-agent',
    ]);
    expect((await devicesTagged('case', 'twice')).map((d) => d.id)).toEqual([device.id]);

    // An upgrade: a new executable, and no token needed any more.
    const newer = join(dir, 'edgefleet-agent-newer');
    await script(newer, `# newer\nexec "${process.execPath}" "${AGENT_BIN}" "$@"`);
    const upgrade = await c.install(['--binary', newer, '--prefix', c.prefix]);
    expect(upgrade.code, upgrade.stderr).toBe(0);
    expect(upgrade.stdout).toContain(`updated: ${join(c.prefix, 'usr/local/bin/edgefleet-agent')}`);
    expect(upgrade.stdout).toContain(
      `unchanged: ${join(c.prefix, 'etc/systemd/system/edgefleet-agent.service')}`,
    );
    expect((await c.take()).filter((l) => l.startsWith('systemctl'))).toEqual([
      'systemctl daemon-reload',
      'systemctl enable --now edgefleet-agent',
      'systemctl try-restart edgefleet-agent',
    ]);
    expect(await readFile(join(c.prefix, 'usr/local/bin/edgefleet-agent'), 'utf8')).toContain('# newer');
  });

  it('--no-start leaves systemd alone; EDGEFLEET_INSTALL_SKIP_USER leaves the users alone', async () => {
    const c = await newCase();
    const { token } = await env.api.enrollmentToken({ tags: { case: 'no-start' } });
    const result = await c.install(
      [
        '--binary',
        wrapper,
        '--server',
        env.fleet.httpUrl,
        '--token',
        token,
        '--prefix',
        c.prefix,
        '--no-start',
      ],
      { env: { EDGEFLEET_INSTALL_SKIP_USER: '1' } },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('not started (--no-start)');
    const calls = await c.take();
    expect(calls.filter((l) => /^(systemctl|groupadd|useradd) /.test(l))).toEqual([]);
    expect(await devicesTagged('case', 'no-start')).toHaveLength(1);
  });

  it('refuses a binary built for another architecture, naming both, before writing anything', async () => {
    const c = await newCase();
    // An ELF header (64-bit, little-endian) whose e_machine is the other architecture.
    const other = process.arch === 'arm64' ? 62 : 183;
    const elf = Buffer.alloc(64);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    elf.writeUInt16LE(2, 16);
    elf.writeUInt16LE(other, 18);
    const wrong = join(dir, 'edgefleet-agent-linux-other');
    await writeFile(wrong, elf, { mode: 0o755 });
    const { token } = await env.api.enrollmentToken();
    const result = await c.install([
      '--binary',
      wrong,
      '--server',
      env.fleet.httpUrl,
      '--token',
      token,
      '--prefix',
      c.prefix,
    ]);
    expect(result.code).toBe(1);
    const [built, host, hint] =
      process.arch === 'arm64' ? ['x86_64', 'aarch64', 'arm64'] : ['aarch64', 'x86_64', 'x64'];
    expect(result.stderr).toBe(
      `install.sh: --binary ${wrong} is built for ${built}, but this machine is ${host} (uname -m): use edgefleet-agent-linux-${hint}\n`,
    );
    await expect(stat(c.prefix)).rejects.toThrow(/ENOENT/);
    expect(await c.take()).toEqual([]);
  });

  it('refuses to enroll without a token, or a server, before writing anything', async () => {
    const c = await newCase();
    const noToken = await c.install([
      '--binary',
      wrapper,
      '--server',
      env.fleet.httpUrl,
      '--prefix',
      c.prefix,
    ]);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/^install\.sh: --token is required: this device is not enrolled yet/);
    const noServer = await c.install(['--binary', wrapper, '--token', 'eft_whatever', '--prefix', c.prefix]);
    expect(noServer.code).toBe(1);
    expect(noServer.stderr).toMatch(/^install\.sh: --server is required/);
    await expect(stat(c.prefix)).rejects.toThrow(/ENOENT/);
    expect(await c.take()).toEqual([]);
  });

  it('refuses to install into / when not root, and says how', async () => {
    const c = await newCase();
    const fakeUser = join(dir, 'not-root');
    await mkdir(fakeUser, { recursive: true });
    await script(join(fakeUser, 'id'), 'echo 1000');
    const result = await c.install(['--binary', wrapper], { extraPath: fakeUser });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^install\.sh: must run as root to install into \/ \(try: sudo /);
    expect(await c.take()).toEqual([]);
  });

  it('--help lists every option and exits 0', async () => {
    const c = await newCase();
    const result = await c.install(['--help']);
    expect(result.code).toBe(0);
    for (const option of [
      '--binary',
      '--server',
      '--token',
      '--profile',
      '--tags',
      '--prefix',
      '--no-start',
    ]) {
      expect(result.stdout).toContain(option);
    }
  });
});
