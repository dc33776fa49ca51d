/**
 * deploy/edgefleet-agent.service: systemd itself accepts it (`systemd-analyze verify` over a throwaway root
 * holding the unit, an executable at its ExecStart path and the host's own system units: any warning fails),
 * and it keeps the promises the README makes — the agent's real CLI flags, a dedicated user, the data dir
 * as the only writable state, the sandbox, and no MemoryDenyWriteExecute (V8's JIT needs W+X pages).
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const UNIT_PATH = fileURLToPath(new URL('../../../deploy/edgefleet-agent.service', import.meta.url));
const text = readFileSync(UNIT_PATH, 'utf8');

/** Section → key → values (a key may repeat), comments and blank lines left out. */
function parseUnit(source: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of source.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq <= 0) throw new Error(`not a unit file line: ${raw}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

const unit = parseUnit(text);
const value = (section: string, key: string) => unit.get(section)?.get(key);

describe('deploy/edgefleet-agent.service', () => {
  it('passes systemd-analyze verify with no warning', () => {
    const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
    expect(which.status, 'systemd-analyze is needed for this test: apt-get install systemd').toBe(0);
    const root = mkdtempSync(join(tmpdir(), 'edgefleet-unit-'));
    try {
      mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
      mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
      mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
      writeFileSync(join(root, 'usr/local/bin/edgefleet-agent'), '#!/bin/sh\n');
      chmodSync(join(root, 'usr/local/bin/edgefleet-agent'), 0o755);
      // The units ours refers to (multi-user.target, network-online.target, sysinit.target…); their symlinks
      // are absolute /lib/… paths, resolved inside the root.
      cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), {
        recursive: true,
        verbatimSymlinks: true,
      });
      symlinkSync('usr/lib', join(root, 'lib'));
      writeFileSync(join(root, 'etc/systemd/system/edgefleet-agent.service'), text);
      const verify = spawnSync('systemd-analyze', [`--root=${root}`, 'verify', 'edgefleet-agent.service'], {
        encoding: 'utf8',
      });
      expect({ status: verify.status, stderr: verify.stderr, stdout: verify.stdout }).toEqual({
        status: 0,
        stderr: '',
        stdout: '',
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('runs the agent as the edgefleet user on the data dir install.sh enrolls into', () => {
    expect(value('Service', 'ExecStart')).toEqual([
      '/usr/local/bin/edgefleet-agent run --data-dir /var/lib/edgefleet-agent',
    ]);
    expect(value('Service', 'User')).toEqual(['edgefleet']);
    expect(value('Service', 'Group')).toEqual(['edgefleet']);
    expect(value('Install', 'WantedBy')).toEqual(['multi-user.target']);
  });

  it('restarts on failure, within a start limit that leaves the update machine room for its crash-loop check', () => {
    expect(value('Service', 'Restart')).toEqual(['on-failure']);
    expect(value('Service', 'RestartSec')).toEqual(['5s']);
    expect(value('Unit', 'StartLimitIntervalSec')).toEqual(['600']);
    // maxStateReentries (3) restarts + the one that rolls back must fit.
    expect(Number(value('Unit', 'StartLimitBurst')?.[0])).toBeGreaterThan(4);
  });

  it('keeps state and the unpacked native addons in the only writable directories', () => {
    expect(value('Service', 'StateDirectory')).toEqual(['edgefleet-agent']);
    expect(value('Service', 'CacheDirectory')).toEqual(['edgefleet-agent']);
    expect(value('Service', 'Environment')).toEqual([
      'EDGEFLEET_CACHE_DIR=/var/cache/edgefleet-agent',
      'ORT_DISABLE_TELEMETRY=1',
    ]);
    expect(value('Service', 'ReadWritePaths')).toBeUndefined();
  });

  it('sandboxes the agent', () => {
    const expected: Record<string, string> = {
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      NoNewPrivileges: 'yes',
      CapabilityBoundingSet: '',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectKernelLogs: 'yes',
      ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
      RestrictNamespaces: 'yes',
      LockPersonality: 'yes',
      RestrictRealtime: 'yes',
      SystemCallArchitectures: 'native',
    };
    for (const [key, v] of Object.entries(expected)) expect(value('Service', key), key).toEqual([v]);
  });

  it('leaves off what would break Node or the GPU providers, and says why', () => {
    for (const key of [
      'MemoryDenyWriteExecute',
      'PrivateDevices',
      'ProtectClock',
      'DeviceAllow',
      'DevicePolicy',
    ]) {
      expect(value('Service', key), key).toBeUndefined();
    }
    expect(text).toMatch(/# MemoryDenyWriteExecute= is deliberately NOT set: V8's JIT/);
    expect(text).toMatch(/#\s+SupplementaryGroups=video/);
    expect(text).toMatch(/#\s+DeviceAllow=\/dev\/nvidiactl rw/);
  });
});
