/**
 * Redis Cluster over TLS with an ACL user: six TLS-only nodes (`--port 0
 * --tls-port`, `--tls-cluster yes` for the bus, `--tls-replication yes`,
 * client certificates required, `default` user off), 3 masters and 3
 * replicas. The nodes announce 127.0.0.1 while their certificate names
 * `localhost`: every node connection must carry REDIS_TLS_SERVERNAME. A run
 * completes exactly once, and a master killed mid-run loses and doubles
 * nothing. Nodes announcing a hostname instead (certificates per host) need
 * no servername: the name CLUSTER SLOTS gives is the one checked.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../../jobs/queues.ts';
import type { Cluster } from 'ioredis';
import { loadEnv } from '../../server/env.ts';
import { createRedis, queuePrefix, redisTopology } from '../../server/redis.ts';
import { testEnv, waitFor } from '../helpers/stack.ts';
import { report, runsThroughFault, startEvalgate, type TopologyStack } from '../helpers/topology-stack.ts';
import { cli, makeCertificates, startCluster, type LocalCluster, type TlsFiles } from '../helpers/topology-servers.ts';

describe('Redis Cluster over TLS with an ACL user (3 masters, 3 replicas)', () => {
  let certs: TlsFiles;
  let cluster: LocalCluster;
  let s: TopologyStack;
  let prefix: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    certs = await makeCertificates();
    cluster = await startCluster({ secure: { certs, user: 'evalgate', pass: 's3cret' } });
    prefix = `{egt_${randomBytes(4).toString('hex')}}`;
    env = {
      REDIS_CLUSTER_NODES: cluster.seeds,
      EVALGATE_QUEUE_PREFIX: prefix,
      REDIS_USERNAME: 'evalgate',
      REDIS_PASSWORD: 's3cret',
      REDIS_TLS_CA_FILE: certs.ca,
      REDIS_TLS_CERT_FILE: certs.clientCert,
      REDIS_TLS_KEY_FILE: certs.clientKey,
      // the nodes announce 127.0.0.1; their certificate names localhost
      REDIS_TLS_SERVERNAME: 'localhost',
    };
    s = await startEvalgate(env);
  }, 180_000);
  afterAll(async () => {
    await s?.close();
    await cluster?.stop();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  const chunkKey = () => `${queuePrefix(prefix, QUEUE_NAMES.runChunk, 'cluster')}:${QUEUE_NAMES.runChunk}:wait`;

  it('a run completes exactly once, producer and workers connected over TLS as the ACL user', async () => {
    const port = cluster.nodes[0]!.port;
    // TLS only: no plain-text port, and a plain-text client on the TLS port gets no answer
    expect(await cluster.cli(port, ['config', 'get', 'port'])).toBe('port\n0');
    expect(await cluster.cli(port, ['config', 'get', 'tls-cluster'])).toBe('tls-cluster\nyes');
    expect(await cli(port, ['ping']).catch((err: Error) => err.message)).not.toBe('PONG');
    expect((await s.readyz()).body.checks).toMatchObject({ redis: 'ok', worker_redis: 'ok' });
    const tally = await runsThroughFault(s, async () => undefined, 300);
    const master = await cluster.masterOf(chunkKey());
    const clients = (await cluster.cli(master.port, ['client', 'list'])).split('\n').filter((l) => /name=evalgate-/.test(l));
    report('cluster-tls+acl', { ...tally, evalgate_connections_on_chunk_master: clients.length });
    expect(tally).toMatchObject({ runs: 2, lost: 0, duplicates: 0 });
    expect(clients.some((l) => /name=evalgate-producer/.test(l))).toBe(true);
    expect(clients.some((l) => /name=evalgate-worker/.test(l))).toBe(true);
    expect(clients.every((l) => /user=evalgate /.test(l))).toBe(true);
  });

  it('without the servername (the nodes announce 127.0.0.1), the client certificate or the password, no cluster connection', async () => {
    const attempt = async (drop: string[]) => {
      const e = { ...testEnv(env) };
      for (const d of drop) delete e[d];
      const c = createRedis(redisTopology(loadEnv(e)), 'producer') as Cluster;
      try {
        return await new Promise<string>((resolve) => {
          c.once('ready', () => resolve('ready'));
          // the cluster's own error only says "Failed to refresh slots cache"; its nodes' errors, when it has them, add why
          const nodeErrors: string[] = [];
          c.on('node error', (err: Error) => nodeErrors.push(err.message));
          c.once('error', (err: Error) => resolve([err.message, ...new Set(nodeErrors)].join('; ')));
        });
      } finally {
        c.disconnect();
      }
    };
    expect(await attempt([])).toBe('ready');
    // (ioredis refreshes the slots on a throw-away connection whose TLS error it drops: only "Connection is closed" is left)
    expect(await attempt(['REDIS_TLS_SERVERNAME'])).not.toBe('ready');
    expect(await attempt(['REDIS_TLS_CERT_FILE', 'REDIS_TLS_KEY_FILE'])).not.toBe('ready');
    expect(await attempt(['REDIS_PASSWORD'])).toMatch(/WRONGPASS|NOAUTH/);
  });

  it('a master killed mid-run: the replica takes over over the TLS bus, every run completes exactly once', async () => {
    expect((await s.readyz()).status).toBe(200);
    const victim = await cluster.masterOf(chunkKey());
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
    const promoted = await cluster.masterOf(chunkKey());
    await waitFor(async () => (await s.readyz()).status === 200, { timeoutMs: 30_000, what: '/readyz 200 after the failover' });
    report('cluster-tls-master-killed', { ...tally, readyz_while_down: sawUnready.slice(0, 80), new_master: promoted.port !== victim.port });
    expect(promoted.port).not.toBe(victim.port);
    expect(sawUnready).toMatch(/^failed/);
    expect(tally).toMatchObject({ runs: 2, lost: 0, duplicates: 0 });
  });

  it('nodes that announce a hostname (cluster-preferred-endpoint-type hostname), no REDIS_TLS_SERVERNAME: the name reached is the name checked', async () => {
    // each node's certificate would name its own host; here they all announce localhost, the name their certificate carries
    const alive = cluster.nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
    for (const n of alive) {
      expect(await cluster.cli(n.port, ['config', 'set', 'cluster-announce-hostname', 'localhost'])).toBe('OK');
      expect(await cluster.cli(n.port, ['config', 'set', 'cluster-preferred-endpoint-type', 'hostname'])).toBe('OK');
    }
    // every node names every endpoint by hostname (learnt through gossip; `?` until then)
    await waitFor(async () => {
      for (const n of alive) {
        const lines = (await cluster.cli(n.port, ['cluster', 'slots'])).split('\n');
        if (lines.includes('?') || lines.filter((l) => l === 'localhost').length !== lines.filter((l) => l === 'ip').length) return false;
      }
      return true;
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'CLUSTER SLOTS to name localhost everywhere' });
    const byName: Record<string, string> = { ...env, REDIS_CLUSTER_NODES: alive.map((n) => `localhost:${n.port}`).join(',') };
    delete byName.REDIS_TLS_SERVERNAME;
    const named = await startEvalgate(byName);
    try {
      expect((await named.readyz()).body.checks).toMatchObject({ redis: 'ok', worker_redis: 'ok' });
      const tally = await runsThroughFault(named, async () => undefined, 300);
      report('cluster-tls-hostnames', tally);
      expect(tally).toMatchObject({ runs: 2, lost: 0, duplicates: 0 });
    } finally {
      await named.close();
    }
  });
});
