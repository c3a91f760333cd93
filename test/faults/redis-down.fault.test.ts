/**
 * Fault suite, Redis down: the disposable redis-server is killed for ~20 s
 * (longer than BullMQ's 5 s drainDelay) while the workers are idle, and while
 * they are busy. It comes back empty (it keeps nothing on disk), so every job
 * is gone: Postgres and the reconciler rebuild them. While Redis is down,
 * scheduling still answers 202 at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { items } from '../helpers/factories.ts';
import { report, Rig, seconds, until } from './rig.ts';

const OUTAGE_MS = 20_000;

describe('fault: Redis down', () => {
  it('Redis down ~20 s while the workers are idle: scheduling answers 202 at once; the workers resume by themselves', async ({ onTestFailed }) => {
    const rig = await Rig.start();
    onTestFailed(() => rig.dumpLogs());
    try {
      const api = await rig.startApi();
      const worker = await rig.startWorker();
      // A first run proves the stack works; afterwards the workers sit idle on their blocking connections.
      const warm = await rig.dataset(50);
      const first = (await rig.schedule(api, warm)).value.body.id as string;
      await rig.waitEnd(first);
      await sleep(2_000);

      const n = 500;
      const ds = await rig.dataset(n);
      const downAt = performance.now();
      const downAtWall = Date.now();
      await rig.redis.stop();
      await sleep(3_000);
      const during = await rig.scheduleWhileRedisAway(api, ds);
      await until(downAt, OUTAGE_MS);
      expect(worker.child.exitCode).toBeNull();
      expect((await rig.run(during.runId)).status).toBe('pending');

      await rig.redis.start();
      const upAt = Date.now();
      const done = await rig.waitEnd(during.runId);
      const { lost, duplicates } = await rig.assertExactlyOnce(during.runId, n);

      // The API's producer connection is back too: a new run is enqueued directly and completes.
      const after = await rig.schedule(api, await rig.dataset(50));
      expect(after.value.status).toBe(202);
      expect((await rig.waitEnd(after.value.body.id as string)).status).toBe('completed');
      await rig.assertExactlyOnce(after.value.body.id as string, 50);
      expect(worker.child.exitCode).toBeNull();

      report('Redis down 20 s, workers idle', {
        outage_s: seconds(upAt - downAtWall),
        schedule_while_down_ms: during.scheduleMs,
        schedule_status: 202,
        get_while_down_ms: during.readMs,
        readyz_while_down_ms: during.readyzMs,
        recovery_s: seconds((done.completed_ms ?? 0) - upAt),
        items: n,
        lost,
        duplicates,
      });
    } finally {
      await rig.close();
    }
  });

  it('Redis down ~20 s mid-run: the run and one scheduled during the outage complete exactly once', async ({ onTestFailed }) => {
    const rig = await Rig.start();
    onTestFailed(() => rig.dumpLogs());
    try {
      const n = 1_500;
      const ds = await rig.dataset(n, items(n, (i) => i % 3 !== 0));
      const ds2 = await rig.dataset(200);
      const api = await rig.startApi();
      const worker = await rig.startWorker({ EVALGATE_FAULT: 'chunk-delay-ms=100' });
      const runId = (await rig.schedule(api, ds)).value.body.id as string;
      const at = await rig.waitProgress(runId, 0.3);

      const downAt = performance.now();
      const downAtWall = Date.now();
      await rig.redis.stop();
      await sleep(2_000);
      const during = await rig.scheduleWhileRedisAway(api, ds2);
      await until(downAt, OUTAGE_MS);
      const mid = await rig.run(runId);
      expect(mid.status).toBe('running');
      expect(worker.child.exitCode).toBeNull();

      await rig.redis.start();
      const upAt = Date.now();
      const done = await rig.waitEnd(runId);
      expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: 1_000, failed_count: 500 });
      const { lost, duplicates } = await rig.assertExactlyOnce(runId, n);
      const done2 = await rig.waitEnd(during.runId);
      const second = await rig.assertExactlyOnce(during.runId, 200);
      expect(worker.child.exitCode).toBeNull();

      report('Redis down 20 s, workers busy', {
        down_at_pct: Math.round((at.completed_count / n) * 100),
        done_when_back_pct: Math.round((mid.completed_count / n) * 100),
        outage_s: seconds(upAt - downAtWall),
        schedule_while_down_ms: during.scheduleMs,
        schedule_status: 202,
        readyz_while_down_ms: during.readyzMs,
        resumed_s: seconds(((await rig.firstResultAfter(runId, upAt)) ?? 0) - upAt),
        recovery_s: seconds((done.completed_ms ?? 0) - upAt),
        recovery_run_scheduled_while_down_s: seconds((done2.completed_ms ?? 0) - upAt),
        items: n + 200,
        lost: lost + second.lost,
        duplicates: duplicates + second.duplicates,
      });
    } finally {
      await rig.close();
    }
  });
});
