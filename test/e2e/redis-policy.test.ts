/** Start-up warns when Redis may evict BullMQ's keys (anything but maxmemory-policy noeviction). */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dropDatabase } from '../../server/db.ts';
import { startDisposableRedis, startEvalgateApi, type DisposableRedis } from '../helpers/processes.ts';
import { testEnv } from '../helpers/stack.ts';

let redis: DisposableRedis;
const env = testEnv({ LOG_LEVEL: 'info' });

beforeAll(async () => {
  redis = await startDisposableRedis();
});
afterAll(async () => {
  await redis?.stop();
  await dropDatabase(env.DATABASE_URL as string);
});

it('warns about an evicting Redis, and stays quiet about noeviction', async () => {
  for (const policy of ['allkeys-lru', 'noeviction']) {
    await redis.client().config('SET', 'maxmemory-policy', policy);
    const { proc: p } = await startEvalgateApi({ ...env, REDIS_URL: redis.url });
    p.kill('SIGTERM');
    await p.exited;
    if (process.env.DEBUG_POLICY) console.log(p.output());
    if (policy === "noeviction") expect(p.output()).not.toMatch(/maxmemory-policy/);
    else expect(p.output()).toMatch(/Redis maxmemory-policy is \\"allkeys-lru\\"; BullMQ needs \\"noeviction\\"/);
  }
}, 90_000);
