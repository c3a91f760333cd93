/**
 * Redis Sentinel: one master, one replica, three sentinels (quorum 2), all
 * disposable. evalgate finds the master through the sentinels; `SENTINEL
 * FAILOVER` mid-run moves it, and every run still completes with one result
 * per item.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/stack.ts';
import { report, runsThroughFault, startEvalgate, type TopologyStack } from '../helpers/topology-stack.ts';
import { cli, startSentinel, type LocalSentinel } from '../helpers/topology-servers.ts';

describe('Redis Sentinel (1 master, 1 replica, 3 sentinels)', () => {
  let sentinel: LocalSentinel;
  let s: TopologyStack;
  beforeAll(async () => {
    sentinel = await startSentinel();
    s = await startEvalgate({ REDIS_SENTINELS: sentinel.list, REDIS_SENTINEL_NAME: sentinel.name });
  }, 180_000);
  afterAll(async () => {
    await s?.close();
    await sentinel?.stop();
  });

  it('connects to the master the sentinels name', async () => {
    expect(await sentinel.masterPort()).toBe(sentinel.master.port);
    expect((await s.readyz()).body.checks).toMatchObject({ redis: 'ok', worker_redis: 'ok' });
    const clients = await cli(sentinel.master.port, ['client', 'list']);
    expect(clients).toMatch(/name=evalgate-producer/);
    expect(clients).toMatch(/name=evalgate-worker/);
  });

  it('SENTINEL FAILOVER mid-run: both connections follow the new master, every run completes exactly once', async () => {
    const before = await sentinel.masterPort();
    const tally = await runsThroughFault(s, async () => {
      expect(await cli(sentinel.sentinels[0]!.port, ['sentinel', 'failover', sentinel.name])).toBe('OK');
      await waitFor(async () => (await sentinel.masterPort()) !== before, { timeoutMs: 60_000, intervalMs: 100, what: 'the sentinels to name a new master' });
    });
    const after = await sentinel.masterPort();
    expect(after).toBe(sentinel.replica.port);
    // nothing of evalgate's left writing to the demoted master: producer and workers are on the new one
    const onNew = await cli(after, ['client', 'list']);
    expect(onNew).toMatch(/name=evalgate-producer/);
    expect(onNew).toMatch(/name=evalgate-worker/);
    expect((await s.readyz()).status).toBe(200);
    report('sentinel-failover', { ...tally, old_master: before, new_master: after });
    expect(tally).toMatchObject({ runs: 2, lost: 0, duplicates: 0 });
  });
});
