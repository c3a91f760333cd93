/**
 * Fault suite, shutdown with a dependency away: a worker told to stop
 * (SIGTERM) while Redis is down, or frozen, must still exit, in bounded time,
 * and lose nothing: its chunks are redone by the next worker once Redis is
 * back. (BullMQ's close waits on a connection that is reconnecting, forever;
 * the worker drops its connections after SHUTDOWN_TIMEOUT_MS plus a short
 * bound instead.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect } from 'vitest';
import { faultTest, report, seconds, type Outage, type Rig } from '../helpers/fault-rig.ts';

const SHUTDOWN_TIMEOUT_MS = 2_000;
/** SHUTDOWN_TIMEOUT_MS, the forced close's 3 s bound, and slack for a busy machine. */
const EXIT_BOUND_MS = SHUTDOWN_TIMEOUT_MS + 3_000 + 10_000;

async function sigtermWhileRedisAway(rig: Rig, fault: 'down' | 'frozen'): Promise<void> {
  const n = 600;
  const { workers, runId } = await rig.startRun(await rig.dataset(n), {
    workers: [{ EVALGATE_FAULT: 'chunk-delay-ms=300', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) }],
  });
  const w = workers[0]!;
  await rig.waitProgress(runId, 0.1);
  const outage: Outage = fault === 'down' ? await rig.stopRedis() : await rig.freezeRedis();
  await sleep(1_000);

  const termAt = Date.now();
  w.kill('SIGTERM');
  // A deadline on the wait, not an assertion on the measured time (which is reported below).
  const exit = await Promise.race([w.exited, sleep(EXIT_BOUND_MS).then(() => 'still running' as const)]);
  const exitMs = Date.now() - termAt;
  if (exit === 'still running') w.kill('SIGKILL');
  expect(exit, 'the worker must exit although Redis is away').not.toBe('still running');

  await outage.end();
  await rig.startWorker();
  const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: n });
  report(`worker SIGTERM while Redis ${fault}`, {
    exit_s: seconds(exitMs),
    exit: JSON.stringify(exit),
    recovery_s: seconds((done.completed_ms ?? 0) - termAt),
    ...tally,
  });
}

describe('fault: shutdown while Redis is away', () => {
  faultTest('SIGTERM while Redis is down: the worker exits in bounded time; the next one completes the run exactly once', (rig) =>
    sigtermWhileRedisAway(rig, 'down'));
  faultTest('SIGTERM while Redis is frozen: the worker exits in bounded time; the next one completes the run exactly once', (rig) =>
    sigtermWhileRedisAway(rig, 'frozen'));
});
