/**
 * Every file in firmware-profiles/ (found by listing the directory, so new files are covered) must be a
 * valid profile named `<id>.json`, and the targets the product contract names must exist as described.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type FirmwareProfile, FirmwareProfileSchema } from '../../shared/firmware-profile.js';

const DIR = new URL('../../firmware-profiles/', import.meta.url);
const files = readdirSync(DIR).sort();

function load(file: string): FirmwareProfile {
  const text = readFileSync(new URL(file, DIR), 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`firmware-profiles/${file} is not JSON: ${(err as Error).message}`);
  }
  const parsed = FirmwareProfileSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`firmware-profiles/${file} does not match the schema: ${parsed.error.message}`);
  }
  return parsed.data;
}

describe('firmware-profiles/', () => {
  it('is not empty', () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
  });

  describe.each(files)('%s', (file) => {
    it('is a valid profile named <id>.json', () => {
      const profile = load(file);
      expect(file).toBe(`${profile.id}.json`);
    });

    it('falls back to the cpu provider last, listing each provider once', () => {
      const names = load(file).executionProviders.map((p) => p.name);
      expect(names.at(-1)).toBe('cpu');
      expect(new Set(names).size).toBe(names.length);
    });

    it('can hold its largest model in its memory budget', () => {
      const profile = load(file);
      expect(profile.maxModelBytes).toBeLessThanOrEqual(profile.memoryBudgetBytes);
    });
  });

  it.each([
    ['x86_64-cpu', 'x64', ['cpu']],
    ['x86_64-cuda', 'x64', ['cuda', 'cpu']],
    ['jetson-orin', 'arm64', ['tensorrt', 'cuda', 'cpu']],
    ['raspberry-pi-5', 'arm64', ['cpu']],
  ])('the contract target %s exists (%s, providers %j)', (id, arch, providers) => {
    expect(files).toContain(`${id}.json`);
    const profile = load(`${id}.json`);
    expect(profile.arch).toBe(arch);
    expect(profile.executionProviders.map((p) => p.name)).toEqual(providers);
  });
});
