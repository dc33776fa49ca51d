/**
 * The firmware profiles this agent build knows, for `edgefleet-agent doctor` on a device that is not
 * enrolled yet (an enrolled agent uses the profile the fleet handed it). Imported as JSON so they travel
 * inside the single executable, which has no `firmware-profiles/` folder beside it; a test keeps this list
 * equal to the folder's files.
 */

import jetsonOrin from '../firmware-profiles/jetson-orin.json' with { type: 'json' };
import raspberryPi5 from '../firmware-profiles/raspberry-pi-5.json' with { type: 'json' };
import x8664Cpu from '../firmware-profiles/x86_64-cpu.json' with { type: 'json' };
import x8664Cuda from '../firmware-profiles/x86_64-cuda.json' with { type: 'json' };
import { type FirmwareProfile, parseFirmwareProfile } from '../shared/firmware-profile.js';

export const KNOWN_PROFILES: readonly FirmwareProfile[] = [jetsonOrin, raspberryPi5, x8664Cpu, x8664Cuda].map(
  parseFirmwareProfile,
);
