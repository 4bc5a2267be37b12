import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    // Generous: waits end on events, so only a failing or starved test comes near these.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end tests start real daemons; two at a time is what 2 cores allow.
    maxWorkers: 2,
  },
});
