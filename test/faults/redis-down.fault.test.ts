/**
 * Fault suite, Redis down: the disposable redis-server is killed for ~20 s
 * (longer than BullMQ's 5 s drainDelay) while the workers are idle, and while
 * they are busy. It comes back empty (it keeps nothing on disk), so every job
 * is gone: Postgres and the reconciler rebuild them. While Redis is down,
 * scheduling still answers 202 at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect } from 'vitest';
import { faultTest, report, seconds } from '../helpers/fault-rig.ts';

const OUTAGE_MS = 20_000;

describe('fault: Redis down', () => {
  faultTest('Redis down ~20 s while the workers are idle: scheduling answers 202 at once; the workers resume by themselves', async (rig) => {
    // A first run proves the stack works; afterwards the workers sit idle on their blocking connections.
    const warm = await rig.startRun(await rig.dataset(50), { workers: [{}] });
    const { api } = warm;
    const worker = warm.workers[0]!;
    await rig.waitEnd(warm.runId);
    await sleep(2_000);

    const n = 500;
    const ds = await rig.dataset(n);
    const outage = await rig.stopRedis();
    await sleep(3_000);
    const during = await rig.scheduleWhileRedisAway(api, ds);
    await outage.lasting(OUTAGE_MS);
    expect(worker.child.exitCode).toBeNull();
    expect((await rig.run(during.runId)).status).toBe('pending');

    const upAt = await outage.end();
    const { done, tally } = await rig.completesExactlyOnce(during.runId, n);

    // The API's producer connection is back too: a new run is enqueued directly and completes.
    const after = await rig.schedule(api, await rig.dataset(50));
    expect(after.value.status).toBe(202);
    await rig.completesExactlyOnce(after.value.body.id as string, 50);
    expect(worker.child.exitCode).toBeNull();

    report('Redis down 20 s, workers idle', {
      outage_s: seconds(upAt - outage.beganAt),
      schedule_while_down_ms: during.scheduleMs,
      schedule_status: 202,
      get_while_down_ms: during.readMs,
      readyz_while_down_ms: during.readyzMs,
      recovery_s: seconds((done.completed_ms ?? 0) - upAt),
      ...tally,
    });
  });

  faultTest('Redis down ~20 s mid-run: the run and one scheduled during the outage complete exactly once', async (rig) => {
    const r = await rig.redisAwayMidRun(() => rig.stopRedis(), { settleMs: 2_000, lastingMs: OUTAGE_MS });
    // Redis was back before the run could finish: the rest of it ran after the outage.
    expect(r.mid.status).toBe('running');
    report('Redis down 20 s, workers busy', {
      down_at_pct: r.at_pct,
      done_when_back_pct: r.mid_pct,
      outage_s: r.away_s,
      schedule_while_down_ms: r.during.scheduleMs,
      schedule_status: 202,
      readyz_while_down_ms: r.during.readyzMs,
      resumed_s: r.resumed_s,
      recovery_s: r.recovery_s,
      recovery_run_scheduled_while_down_s: r.second_recovery_s,
      ...r.tally,
    });
  });
});
