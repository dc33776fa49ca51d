import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration suites start real brokers, LevelDB stores and agent processes: give them room, but no
    // wall-clock assertions live in tests (figures belong to benchmarks).
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', './test/support/summary-reporter.ts'],
    env: { ORT_DISABLE_TELEMETRY: '1' },
  },
});
