/**
 * Redis Sentinel over TLS with ACL users: a TLS-only master and replica
 * (`--port 0 --tls-port`, `--tls-replication yes`, client certificates
 * required, `default` off, an ACL user) and three TLS-only sentinels
 * (`tls-port`, `tls-replication yes`) with an ACL user of their own. The
 * servers announce 127.0.0.1 while their certificate names `localhost`:
 * evalgate reaches the sentinels (sentinelTLS) and the master they name
 * (enableTLSForSentinelMode) with REDIS_TLS_SERVERNAME. `SENTINEL FAILOVER`
 * mid-run: every run completes exactly once. Then a topology known by
 * hostname (certificates per host): no servername, the names are checked.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/stack.ts';
import { report, runsThroughFault, startEvalgate, type TopologyStack } from '../helpers/topology-stack.ts';
import { cli, makeCertificates, secureCli, startSentinel, type LocalSentinel, type TlsFiles } from '../helpers/topology-servers.ts';

describe('Redis Sentinel over TLS with ACL users (1 master, 1 replica, 3 sentinels)', () => {
  let certs: TlsFiles;
  let sentinel: LocalSentinel;
  let s: TopologyStack;
  beforeAll(async () => {
    certs = await makeCertificates();
    sentinel = await startSentinel({ secure: { certs, user: 'evalgate', pass: 's3cret', sentinelUser: 'watcher', sentinelPass: 'w4tch' } });
    s = await startEvalgate({
      REDIS_SENTINELS: sentinel.list,
      REDIS_SENTINEL_NAME: sentinel.name,
      REDIS_SENTINEL_USERNAME: 'watcher',
      REDIS_SENTINEL_PASSWORD: 'w4tch',
      REDIS_USERNAME: 'evalgate',
      REDIS_PASSWORD: 's3cret',
      REDIS_TLS_CA_FILE: certs.ca,
      REDIS_TLS_CERT_FILE: certs.clientCert,
      REDIS_TLS_KEY_FILE: certs.clientKey,
      REDIS_TLS_SERVERNAME: 'localhost',
    });
  }, 180_000);
  afterAll(async () => {
    await s?.close();
    await sentinel?.stop();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  it('connects over TLS to the master the sentinels name, as the ACL user; a run completes exactly once', async () => {
    expect(await sentinel.masterPort()).toBe(sentinel.master.port);
    const sp = sentinel.sentinels[0]!.port;
    // the sentinels take TLS only (a plain-text client is reset), and only their ACL user
    expect(await cli(sp, ['ping']).catch((err: Error) => err.message)).not.toBe('PONG');
    const tlsOnly = secureCli({ certs, user: 'evalgate', pass: 's3cret' }, 'sentinel');
    expect(await cli(sp, ['ping'], { extra: tlsOnly }).catch((err: Error) => err.message)).toMatch(/NOAUTH/);
    expect(await sentinel.sentinelCli(sp, ['ping'])).toBe('PONG');
    expect((await s.readyz()).body.checks).toMatchObject({ redis: 'ok', worker_redis: 'ok' });
    const tally = await runsThroughFault(s, async () => undefined, 300);
    const clients = (await sentinel.cli(sentinel.master.port, ['client', 'list'])).split('\n').filter((l) => /name=evalgate-/.test(l));
    // evalgate's failover detectors: subscribed to +switch-master on the sentinels, over TLS, as the sentinels' user
    // (the sentinels themselves subscribe on the data nodes, not on each other)
    const watching = (await sentinel.sentinelCli(sp, ['client', 'list'])).split('\n').filter((l) => /cmd=subscribe /.test(l));
    report('sentinel-tls+acl', { ...tally, evalgate_connections_on_master: clients.length, subscribed_on_a_sentinel: watching.length });
    expect(watching.length).toBeGreaterThan(0);
    expect(watching.every((l) => /user=watcher /.test(l))).toBe(true);
    expect(tally).toMatchObject({ runs: 2, lost: 0, duplicates: 0 });
    expect(clients.some((l) => /name=evalgate-producer/.test(l))).toBe(true);
    expect(clients.some((l) => /name=evalgate-worker/.test(l))).toBe(true);
    expect(clients.every((l) => /user=evalgate /.test(l))).toBe(true);
  });

  it('SENTINEL FAILOVER mid-run: the connections follow the new master over TLS, every run completes exactly once', async () => {
    const before = await sentinel.masterPort();
    const tally = await runsThroughFault(s, async () => {
      expect(await sentinel.sentinelCli(sentinel.sentinels[0]!.port, ['sentinel', 'failover', sentinel.name])).toBe('OK');
      await waitFor(async () => (await sentinel.masterPort()) !== before, { timeoutMs: 60_000, intervalMs: 100, what: 'the sentinels to name a new master' });
    });
    const after = await sentinel.masterPort();
    expect(after).toBe(sentinel.replica.port);
    const onNew = await sentinel.cli(after, ['client', 'list']);
    expect(onNew).toMatch(/name=evalgate-producer/);
    expect(onNew).toMatch(/name=evalgate-worker/);
    expect((await s.readyz()).status).toBe(200);
    report('sentinel-tls-failover', { ...tally, old_master: before, new_master: after });
    expect(tally).toMatchObject({ runs: 2, lost: 0, duplicates: 0 });
  });
});

describe('Redis Sentinel over TLS, nodes known by hostname, no REDIS_TLS_SERVERNAME', () => {
  let certs: TlsFiles;
  let sentinel: LocalSentinel;
  afterAll(async () => {
    await sentinel?.stop();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  it('the sentinels name the master `localhost` (the name its certificate carries): a run completes exactly once, and after SENTINEL FAILOVER too', async () => {
    certs = await makeCertificates();
    sentinel = await startSentinel({ secure: { certs, user: 'evalgate', pass: 's3cret' }, hostname: 'localhost' });
    expect(await sentinel.sentinelCli(sentinel.sentinels[0]!.port, ['sentinel', 'get-master-addr-by-name', sentinel.name])).toMatch(/^localhost\n/);
    const s = await startEvalgate({
      REDIS_SENTINELS: sentinel.list,
      REDIS_SENTINEL_NAME: sentinel.name,
      REDIS_USERNAME: 'evalgate',
      REDIS_PASSWORD: 's3cret',
      REDIS_TLS_CA_FILE: certs.ca,
      REDIS_TLS_CERT_FILE: certs.clientCert,
      REDIS_TLS_KEY_FILE: certs.clientKey,
    });
    try {
      expect((await s.readyz()).body.checks).toMatchObject({ redis: 'ok', worker_redis: 'ok' });
      const before = await sentinel.masterPort();
      const tally = await runsThroughFault(s, async () => {
        expect(await sentinel.sentinelCli(sentinel.sentinels[0]!.port, ['sentinel', 'failover', sentinel.name])).toBe('OK');
        await waitFor(async () => (await sentinel.masterPort()) !== before, { timeoutMs: 60_000, intervalMs: 100, what: 'the sentinels to name a new master' });
      }, 300);
      expect(await sentinel.sentinelCli(sentinel.sentinels[0]!.port, ['sentinel', 'get-master-addr-by-name', sentinel.name])).toMatch(/^localhost\n/);
      report('sentinel-tls-hostnames', tally);
      expect(tally).toMatchObject({ runs: 2, lost: 0, duplicates: 0 });
    } finally {
      await s.close();
    }
  });
});
