/**
 * The topology suite (`npm run test:topology`): every file starts its own
 * disposable topology (PgBouncer; Redis TLS, IPv6, replica, six-node
 * cluster, Sentinel, the last two also TLS-only with ACL users) from the
 * machine's binaries, and evalgate on it. Kept out of `npm test`.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../../', import.meta.url)),
  test: {
    include: ['test/topology/**/*.topology.test.ts'],
    pool: 'forks',
    // Two files at a time on 2 cores: the cluster and Sentinel files mostly wait on failovers.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 300_000,
    hookTimeout: 180_000,
    env: { NODE_ENV: 'test' },
    reporters: ['default', './test/reporters/summary-line.ts'],
  },
});
