/**
 * Fault suite, Redis loses its data or stops answering: FLUSHALL mid-run, and
 * a redis-server frozen with SIGSTOP mid-run (it keeps its connections open
 * and answers nothing, as a hung or partitioned Redis does). Scheduling during
 * the freeze must answer 202 within a bound instead of waiting for Redis.
 */
import { describe, expect } from 'vitest';
import { items } from '../helpers/factories.ts';
import { faultTest, report, seconds } from '../helpers/fault-rig.ts';

const FREEZE_MS = 15_000;

describe('fault: Redis flushed or frozen', () => {
  faultTest('Redis FLUSHALL mid-run: the reconciler rebuilds the jobs from Postgres, every item exactly once', async (rig) => {
    const n = 1_500;
    const ds = await rig.dataset(n, items(n, (i) => i % 2 === 0));
    const { runId } = await rig.startRun(ds, { workers: [{ EVALGATE_FAULT: 'chunk-delay-ms=60' }] });
    const at = await rig.waitProgress(runId, 0.3);
    const flushedAt = Date.now();
    expect(await rig.redis.client().flushall()).toBe('OK');
    const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: n / 2, failed_count: n / 2 });
    report('Redis FLUSHALL mid-run', {
      flushed_at_pct: Math.round((at.completed_count / n) * 100),
      recovery_s: seconds((done.completed_ms ?? 0) - flushedAt),
      ...tally,
    });
  });

  faultTest('Redis frozen (SIGSTOP) ~15 s mid-run: scheduling answers 202 within a bound, both runs complete exactly once', async (rig) => {
    const r = await rig.redisAwayMidRun(() => rig.freezeRedis(), { settleMs: 1_000, lastingMs: FREEZE_MS });
    report('Redis frozen (SIGSTOP) 15 s, workers busy', {
      frozen_at_pct: r.at_pct,
      freeze_s: r.away_s,
      schedule_while_frozen_ms: r.during.scheduleMs,
      schedule_status: 202,
      get_while_frozen_ms: r.during.readMs,
      readyz_while_frozen_ms: r.during.readyzMs,
      resumed_s: r.resumed_s,
      recovery_s: r.recovery_s,
      recovery_run_scheduled_while_frozen_s: r.second_recovery_s,
      ...r.tally,
    });
  });
});
