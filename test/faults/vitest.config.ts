/**
 * The fault suite (`npm run test:faults`): every test starts its own
 * disposable PostgreSQL and redis-server plus real evalgate processes, then
 * crashes, stops or flushes one of them. Kept out of the default `npm test`.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../../', import.meta.url)),
  test: {
    include: ['test/faults/**/*.fault.test.ts'],
    pool: 'forks',
    // Two files at a time: a fault test mostly waits (outages, lock expiry), and 2 cores carry two.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    env: { NODE_ENV: 'test' },
    reporters: ['default', './test/reporters/summary-line.ts'],
  },
});
