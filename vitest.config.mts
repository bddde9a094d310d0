import { defineConfig } from 'vitest/config';

// Native suites run in forked processes: worker-thread pools and native addons do not mix well.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
