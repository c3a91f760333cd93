/**
 * Fault suite, Redis loses its data or stops answering: FLUSHALL mid-run, and
 * a redis-server frozen with SIGSTOP mid-run (it keeps its connections open
 * and answers nothing, as a hung or partitioned Redis does). Scheduling during
 * the freeze must answer 202 within a bound instead of waiting for Redis.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { items } from '../helpers/factories.ts';
import { report, Rig, seconds, until } from './rig.ts';

const FREEZE_MS = 15_000;

describe('fault: Redis flushed or frozen', () => {
  it('Redis FLUSHALL mid-run: the reconciler rebuilds the jobs from Postgres, every item exactly once', async ({ onTestFailed }) => {
    const rig = await Rig.start();
    onTestFailed(() => rig.dumpLogs());
    try {
      const n = 1_500;
      const ds = await rig.dataset(n, items(n, (i) => i % 2 === 0));
      const api = await rig.startApi();
      await rig.startWorker({ EVALGATE_FAULT: 'chunk-delay-ms=60' });
      const runId = (await rig.schedule(api, ds)).value.body.id as string;
      const at = await rig.waitProgress(runId, 0.3);
      const flushedAt = Date.now();
      expect(await rig.redis.client().flushall()).toBe('OK');
      const done = await rig.waitEnd(runId);
      expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: n / 2, failed_count: n / 2 });
      const { lost, duplicates } = await rig.assertExactlyOnce(runId, n);
      report('Redis FLUSHALL mid-run', {
        flushed_at_pct: Math.round((at.completed_count / n) * 100),
        recovery_s: seconds((done.completed_ms ?? 0) - flushedAt),
        items: n,
        lost,
        duplicates,
      });
    } finally {
      await rig.close();
    }
  });

  it('Redis frozen (SIGSTOP) ~15 s mid-run: scheduling answers 202 within a bound, both runs complete exactly once', async ({ onTestFailed }) => {
    const rig = await Rig.start();
    onTestFailed(() => rig.dumpLogs());
    const pid = await rig.redisPid();
    try {
      const n = 1_500;
      const ds = await rig.dataset(n, items(n, (i) => i % 3 !== 0));
      const ds2 = await rig.dataset(200);
      const api = await rig.startApi();
      const worker = await rig.startWorker({ EVALGATE_FAULT: 'chunk-delay-ms=100' });
      const runId = (await rig.schedule(api, ds)).value.body.id as string;
      const at = await rig.waitProgress(runId, 0.3);

      const frozenAt = performance.now();
      const frozenAtWall = Date.now();
      process.kill(pid, 'SIGSTOP');
      await sleep(1_000);
      const during = await rig.scheduleWhileRedisAway(api, ds2);
      await until(frozenAt, FREEZE_MS);
      expect(worker.child.exitCode).toBeNull();

      process.kill(pid, 'SIGCONT');
      const thawedAt = Date.now();
      const done = await rig.waitEnd(runId);
      expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: 1_000, failed_count: 500 });
      const { lost, duplicates } = await rig.assertExactlyOnce(runId, n);
      const done2 = await rig.waitEnd(during.runId);
      const second = await rig.assertExactlyOnce(during.runId, 200);
      expect(worker.child.exitCode).toBeNull();

      report('Redis frozen (SIGSTOP) 15 s, workers busy', {
        frozen_at_pct: Math.round((at.completed_count / n) * 100),
        freeze_s: seconds(thawedAt - frozenAtWall),
        schedule_while_frozen_ms: during.scheduleMs,
        schedule_status: 202,
        get_while_frozen_ms: during.readMs,
        readyz_while_frozen_ms: during.readyzMs,
        resumed_s: seconds(((await rig.firstResultAfter(runId, thawedAt)) ?? 0) - thawedAt),
        recovery_s: seconds((done.completed_ms ?? 0) - thawedAt),
        recovery_run_scheduled_while_frozen_s: seconds((done2.completed_ms ?? 0) - thawedAt),
        items: n + 200,
        lost: lost + second.lost,
        duplicates: duplicates + second.duplicates,
      });
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await rig.close();
    }
  });
});
