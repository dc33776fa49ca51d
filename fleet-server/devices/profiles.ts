/**
 * Firmware profiles known to the fleet, loaded from a directory of JSON files at start. A file that does
 * not validate stops the server with a message naming the file: a half-known profile is worse than none.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { type FirmwareProfile, FirmwareProfileSchema } from '../../shared/firmware-profile.js';

export async function loadProfiles(dir: string): Promise<Map<string, FirmwareProfile>> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const profiles = new Map<string, FirmwareProfile>();
  for (const file of files) {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(join(dir, file), 'utf8'));
    } catch (err) {
      throw new Error(`firmware profile ${join(dir, file)} is not JSON: ${(err as Error).message}`);
    }
    const parsed = FirmwareProfileSchema.safeParse(raw);
    if (!parsed.success) {
      throw new Error(`firmware profile ${join(dir, file)} is invalid: ${z.prettifyError(parsed.error)}`);
    }
    if (profiles.has(parsed.data.id))
      throw new Error(`firmware profile id ${parsed.data.id} is defined twice`);
    profiles.set(parsed.data.id, parsed.data);
  }
  if (profiles.size === 0) throw new Error(`no firmware profiles in ${dir}`);
  return profiles;
}
