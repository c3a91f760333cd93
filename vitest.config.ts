import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Each file has its own database and queue prefix, so files run in parallel.
    fileParallelism: true,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    env: { NODE_ENV: 'test' },
    reporters: ['default', './test/reporters/summary-line.ts'],
  },
});
