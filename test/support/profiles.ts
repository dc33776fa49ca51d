/** A CPU-only firmware profile for tests that load models without a fleet. */
import type { FirmwareProfile } from '../../shared/firmware-profile.js';

export const TEST_CPU_PROFILE: FirmwareProfile = {
  id: 'test-cpu',
  description: 'test',
  arch: 'x64',
  executionProviders: [{ name: 'cpu', options: {} }],
  intraOpThreads: 1,
  interOpThreads: 1,
  memoryBudgetBytes: 1 << 28,
  maxModelBytes: 1 << 26,
  acceptsVariants: ['default'],
};
