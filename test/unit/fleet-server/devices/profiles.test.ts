/** Firmware profiles load at start: every repo profile validates; a bad file stops the start and is named. */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../../../fleet-server/devices/profiles.js';
import { DEFAULT_PROFILE } from '../../../../fleet-server/devices/registry.js';
import { REPO_PROFILES } from '../../../support/fleet.js';

describe('loadProfiles', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-profiles-'));
    await cp(REPO_PROFILES, dir, { recursive: true });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('loads every profile in the repo, the default among them', async () => {
    const profiles = await loadProfiles(REPO_PROFILES);
    expect([...profiles.keys()].sort()).toEqual([
      'jetson-orin',
      'raspberry-pi-5',
      'x86_64-cpu',
      'x86_64-cuda',
    ]);
    expect(profiles.has(DEFAULT_PROFILE)).toBe(true);
  });

  it.each([
    { name: 'broken.json', content: '{ "id": ', message: /broken\.json is not JSON/ },
    { name: 'wrong.json', content: '{ "id": "wrong", "arch": "sparc" }', message: /wrong\.json is invalid/ },
    {
      name: 'zz-copy.json',
      content: JSON.stringify({
        id: 'x86_64-cpu',
        description: 'a second x86_64-cpu',
        arch: 'x64',
        executionProviders: [{ name: 'cpu' }],
        intraOpThreads: 1,
        memoryBudgetBytes: 1,
        maxModelBytes: 1,
      }),
      message: /x86_64-cpu is defined twice/,
    },
  ])('refuses $name', async ({ name, content, message }) => {
    await writeFile(join(dir, name), content);
    await expect(loadProfiles(dir)).rejects.toThrow(message);
  });

  it('refuses a directory with no profiles', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'fleet-profiles-empty-'));
    try {
      await expect(loadProfiles(empty)).rejects.toThrow(/no firmware profiles/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
