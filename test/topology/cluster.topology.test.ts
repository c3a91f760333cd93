/**
 * A real local Redis Cluster: six `redis-server --cluster-enabled yes` nodes
 * (3 masters, 3 replicas, `redis-cli --cluster create … --cluster-replicas 1`).
 * evalgate refuses an untagged prefix, spreads its queues over slots, keeps
 * every Lua script's keys in one slot, and runs through a master killed
 * mid-run with nothing lost and nothing doubled.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../../jobs/queues.ts';
import { EnvError, loadEnv } from '../../server/env.ts';
import { WriteRateLimiter } from '../../server/rate-limit.ts';
import { queuePrefix } from '../../server/redis.ts';
import { testEnv, waitFor } from '../helpers/stack.ts';
import { report, runsThroughFault, startEvalgate, type TopologyStack } from '../helpers/topology-stack.ts';
import { cli, startCluster, type LocalCluster } from '../helpers/topology-servers.ts';

describe('Redis Cluster (3 masters, 3 replicas)', () => {
  let cluster: LocalCluster;
  let s: TopologyStack;
  let prefix: string;
  beforeAll(async () => {
    cluster = await startCluster();
    prefix = `{egc_${randomBytes(4).toString('hex')}}`;
    s = await startEvalgate({ REDIS_CLUSTER_NODES: cluster.seeds, EVALGATE_QUEUE_PREFIX: prefix });
  }, 180_000);
  afterAll(async () => {
    await s?.close();
    await cluster?.stop();
  });

  it('refuses a queue prefix without a hash tag, naming EVALGATE_QUEUE_PREFIX', () => {
    const bad = () => loadEnv(testEnv({ REDIS_CLUSTER_NODES: cluster.seeds, EVALGATE_QUEUE_PREFIX: 'evalgate' }));
    expect(bad).toThrow(EnvError);
    expect(bad).toThrow(/EVALGATE_QUEUE_PREFIX .*hash tag/);
    // the mode alone, seeded from REDIS_URL, is refused the same way
    expect(() => loadEnv(testEnv({ REDIS_MODE: 'cluster', EVALGATE_QUEUE_PREFIX: 'evalgate' }))).toThrow(/EVALGATE_QUEUE_PREFIX/);
  });

  it('gives every queue a slot of its own, and the Lua keys of the write limiter share one slot per tenant', async () => {
    const port = cluster.nodes[0]!.port;
    const slots = await Promise.all(Object.values(QUEUE_NAMES).map(async (q) => Number(await cli(port, ['cluster', 'keyslot', `${queuePrefix(prefix, q, 'cluster')}:${q}:wait`]))));
    expect(new Set(slots).size).toBe(slots.length);
    const masters = new Set(await Promise.all(Object.values(QUEUE_NAMES).map(async (q) => (await cluster.masterOf(`${queuePrefix(prefix, q, 'cluster')}:${q}:wait`)).port)));
    report('cluster-queue-spread', { queues: slots.length, slots: slots.length, masters: masters.size });

    // the write limiter, on the cluster: never falls back to per-process limits
    const fallbacks: string[] = [];
    const limiter = new WriteRateLimiter(s.container.redis, prefix, { tenantPerMinute: 5, actorPerMinute: 3 }, (err) => fallbacks.push(err.message));
    const p = { tenantId: randomUUID(), role: 'member' as const, actor: randomUUID() };
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) outcomes.push(await limiter.consume(p).then(() => 'ok', (err: Error) => err.constructor.name));
    expect(fallbacks).toEqual([]);
    expect(outcomes).toEqual(['ok', 'ok', 'ok', 'RateLimitedError']);
    // keys without the tenant's hash tag: the same script fails with CROSSSLOT, and the per-process limits would decide instead
    const oldKeys = [`${prefix.replace(/[{}]/g, '')}:ratelimit:actor:${p.actor}`, `${prefix.replace(/[{}]/g, '')}:ratelimit:tenant:${p.tenantId}`];
    await expect(s.container.redis.eval('return 1', 2, ...oldKeys)).rejects.toThrow(/CROSSSLOT/);
  });

  it('a master killed mid-run: /readyz fails until the replica took over, every run completes exactly once', async () => {
    expect((await s.readyz()).status).toBe(200);
    // the master of the busiest queue's slot
    const chunkKey = `${queuePrefix(prefix, QUEUE_NAMES.runChunk, 'cluster')}:${QUEUE_NAMES.runChunk}:wait`;
    const victim = await cluster.masterOf(chunkKey);
    let sawUnready = '';
    const tally = await runsThroughFault(s, async () => {
      await victim.kill();
      const down = await waitFor(async () => {
        const r = await s.readyz();
        return r.status === 503 ? r : null;
      }, { timeoutMs: 30_000, intervalMs: 100, what: '/readyz 503 after the master died' });
      sawUnready = down.body.checks.redis ?? '';
    });
    await cluster.healthy();
    const promoted = await cluster.masterOf(chunkKey);
    expect(promoted.port).not.toBe(victim.port);
    await waitFor(async () => (await s.readyz()).status === 200, { timeoutMs: 30_000, what: '/readyz 200 after the failover' });
    report('cluster-master-killed', { ...tally, readyz_while_down: sawUnready.slice(0, 80), new_master: promoted.port !== victim.port });
    expect(sawUnready).toMatch(/^failed/);
    expect(tally).toMatchObject({ runs: 2, lost: 0, duplicates: 0 });
  });

  it('evalgate pointed at one cluster node as if standalone: /readyz fails naming the cluster instead of saying ok', async () => {
    // 4 queue keys on 16384 slots: all of them on the one node addressed happens once in 81 prefixes; a prefix that does is skipped
    let plainPrefix = '';
    for (let i = 0; i < 20 && !plainPrefix; i++) {
      const candidate = `egc_${randomBytes(4).toString('hex')}`;
      const owners = await Promise.all(Object.values(QUEUE_NAMES).map(async (q) => (await cluster.masterOf(`${candidate}:${q}:readyz`)).port));
      if (owners.some((p) => p !== owners[0])) plainPrefix = candidate;
      else continue;
      const node = owners.find((p) => p === owners[0])!;
      const plain = await startEvalgate({ REDIS_URL: `redis://127.0.0.1:${node}`, EVALGATE_QUEUE_PREFIX: plainPrefix });
      try {
        const r = await plain.readyz();
        expect(r.status).toBe(503);
        expect(r.body.checks.redis).toMatch(/MOVED .*set REDIS_CLUSTER_NODES/);
      } finally {
        await plain.close();
      }
    }
    expect(plainPrefix).not.toBe('');
  });
});
