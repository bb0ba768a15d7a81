import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Worker-thread pools, child processes and real servers are exercised by the tests;
    // forks keep each test file's process state apart.
    pool: 'forks',
    reporters: ['default'],
  },
});
