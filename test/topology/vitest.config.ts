/**
 * The topology suite (`npm run test:topology`): evalgate past one machine, on
 * real services the tests start themselves (PgBouncer, Redis Cluster,
 * Sentinel). Kept out of the default `npm test`.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../../', import.meta.url)),
  test: {
    include: ['test/topology/**/*.topology.test.ts'],
    pool: 'forks',
    // One file at a time: each starts its own servers and a few evalgate processes on 2 cores.
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 180_000,
    env: { NODE_ENV: 'test' },
    reporters: ['default', './test/reporters/summary-line.ts'],
  },
});
