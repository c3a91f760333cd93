import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fault suite has its own config and command: npm run test:faults (test/faults/vitest.config.ts).
    exclude: [...configDefaults.exclude, 'test/faults/**', 'test/topology/**'],
    pool: 'forks',
    // Each file has its own database and queue prefix, so files run in parallel.
    fileParallelism: true,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    env: { NODE_ENV: 'test' },
    reporters: ['default', './test/reporters/summary-line.ts'],
  },
});
