/**
 * Standalone topologies on disposable redis-servers: TLS with a CA, a client
 * certificate, a servername and an ACL user; IPv6 ([::1]); /readyz against a
 * read-only replica; and an `all` process whose Redis is unusable at start-up.
 */
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../server/db.ts';
import { loadEnv } from '../../server/env.ts';
import { createRedis, redisTopology } from '../../server/redis.ts';
import { freePort, killAll, startEvalgateApi, type EvalgateProcess } from '../helpers/processes.ts';
import { testEnv, waitFor } from '../helpers/stack.ts';
import { report, runsThroughFault, startEvalgate } from '../helpers/topology-stack.ts';
import { cli, makeCertificates, startRedis, type RedisProc, type TlsFiles } from '../helpers/topology-servers.ts';

describe('TLS (CA, client certificate, servername) with an ACL user', () => {
  let certs: TlsFiles;
  let server: RedisProc;
  let tlsEnv: Record<string, string>;
  beforeAll(async () => {
    certs = await makeCertificates();
    const cliExtra = ['--tls', '--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey, '--sni', 'localhost', '--user', 'evalgate', '--pass', 's3cret', '--no-auth-warning'];
    server = await startRedis(
      (port) => [
        '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
        '--tls-cert-file', certs.serverCert, '--tls-key-file', certs.serverKey, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'yes',
        // no default user: only the ACL user gets in
        '--user', 'default', 'off', '--user', 'evalgate', 'on', '>s3cret', '~*', '&*', '+@all',
      ],
      { cliExtra },
    );
    tlsEnv = {
      REDIS_URL: `rediss://127.0.0.1:${server.port}`,
      REDIS_USERNAME: 'evalgate',
      REDIS_PASSWORD: 's3cret',
      REDIS_TLS_CA_FILE: certs.ca,
      REDIS_TLS_CERT_FILE: certs.clientCert,
      REDIS_TLS_KEY_FILE: certs.clientKey,
      // the certificate names localhost, not 127.0.0.1
      REDIS_TLS_SERVERNAME: 'localhost',
    };
  }, 120_000);
  afterAll(async () => {
    await server?.kill();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  it('a run completes, exactly once', async () => {
    const s = await startEvalgate(tlsEnv);
    try {
      expect((await s.readyz()).body.checks).toMatchObject({ redis: 'ok', worker_redis: 'ok' });
      const tally = await runsThroughFault(s, async () => undefined, 300);
      report('tls+acl', tally);
      expect(tally).toMatchObject({ lost: 0, duplicates: 0 });
    } finally {
      await s.close();
    }
  });

  it('each TLS setting is used: without the servername, the client certificate or the password, no connection', async () => {
    const attempt = async (drop: string) => {
      const env = { ...testEnv(tlsEnv) };
      delete env[drop];
      const c = createRedis(redisTopology(loadEnv(env)), 'producer');
      try {
        return await new Promise<string>((resolve) => {
          c.once('ready', () => resolve('ready'));
          c.once('error', (err: Error) => resolve(err.message));
        });
      } finally {
        c.disconnect();
      }
    };
    expect(await attempt('NONE')).toBe('ready');
    expect(await attempt('REDIS_TLS_SERVERNAME')).toMatch(/altnames|hostname|IP/i);
    expect(await attempt('REDIS_PASSWORD')).not.toBe('ready');
    // the server answers a client without a certificate by closing the handshake
    const both = { ...testEnv(tlsEnv) };
    delete both.REDIS_TLS_CERT_FILE;
    delete both.REDIS_TLS_KEY_FILE;
    const noCert = createRedis(redisTopology(loadEnv(both)), 'producer');
    const outcome = await new Promise<string>((resolve) => {
      noCert.once('ready', () => resolve('ready'));
      noCert.once('error', (err: Error) => resolve(err.message));
    });
    noCert.disconnect();
    expect(outcome).not.toBe('ready');
  });
});

describe('IPv6', () => {
  let server: RedisProc;
  beforeAll(async () => {
    server = await startRedis((port) => ['--port', String(port), '--bind', '::1'], { host: '::1' });
  }, 60_000);
  afterAll(async () => server?.kill());

  it('REDIS_URL=redis://[::1]:port: producer and workers connect, a run completes exactly once', async () => {
    const s = await startEvalgate({ REDIS_URL: `redis://[::1]:${server.port}` });
    try {
      expect((await s.readyz()).body.checks).toMatchObject({ redis: 'ok', worker_redis: 'ok' });
      const tally = await runsThroughFault(s, async () => undefined, 300);
      report('ipv6', tally);
      expect(tally).toMatchObject({ lost: 0, duplicates: 0 });
      // both connections are on the IPv6 loopback (a host left in brackets is looked up as the name "[::1]" and fails)
      const clients = await cli(server.port, ['client', 'list'], { host: '::1' });
      expect(clients).toMatch(/name=evalgate-producer/);
      expect(clients).toMatch(/name=evalgate-worker/);
      expect(clients.split('\n').filter((l) => /name=evalgate/.test(l)).every((l) => /addr=\[?::1\]?:/.test(l))).toBe(true);
    } finally {
      await s.close();
    }
  });
});

describe('/readyz on a read-only replica', () => {
  let master: RedisProc;
  let replica: RedisProc;
  beforeAll(async () => {
    master = await startRedis((port) => ['--port', String(port), '--bind', '127.0.0.1']);
    replica = await startRedis((port) => ['--port', String(port), '--bind', '127.0.0.1', '--replicaof', '127.0.0.1', String(master.port)]);
  }, 60_000);
  afterAll(async () => {
    await replica?.kill();
    await master?.kill();
  });

  it('fails naming READONLY while the node is a replica (PING answers there), and passes once it is promoted', async () => {
    expect(await cli(replica.port, ['ping'])).toBe('PONG');
    const s = await startEvalgate({ REDIS_URL: `redis://127.0.0.1:${replica.port}` });
    try {
      const onReplica = await s.readyz();
      expect(onReplica.status).toBe(503);
      expect(onReplica.body.checks.redis).toMatch(/^failed: READONLY/);
      await cli(replica.port, ['replicaof', 'no', 'one']);
      const promoted = await waitFor(async () => ((await s.readyz()).status === 200 ? s.readyz() : null), { timeoutMs: 20_000, what: '/readyz 200 after the promotion' });
      expect(promoted.body.checks).toMatchObject({ redis: 'ok', worker_redis: 'ok' });
    } finally {
      await s.close();
    }
  });
});

describe('an unusable Redis at start-up', () => {
  const procs: EvalgateProcess[] = [];
  afterAll(async () => killAll(procs));

  it('`all` serves HTTP (/healthz 200, /readyz 503 naming both connections) and logs a bounded number of reconnect errors', async () => {
    // accepts every connection and closes it at once: each reconnect attempt of each connection is counted here
    let attempts = 0;
    const sockets = new Set<Socket>();
    const sink = createServer((sock) => {
      attempts++;
      sockets.add(sock);
      sock.destroy();
    });
    const port = await freePort();
    await new Promise<void>((resolve) => sink.listen(port, '127.0.0.1', resolve));
    const env = testEnv({ REDIS_URL: `redis://127.0.0.1:${port}`, LOG_LEVEL: 'info' });
    try {
      // the database must exist before a process that cannot reach Redis (migrations run first anyway)
      const api = await startEvalgateApi(env, { mode: 'all', onSpawn: (p) => procs.push(p), timeoutMs: 90_000 });
      expect((await fetch(`${api.baseUrl}/healthz`)).status).toBe(200);
      const ready = await fetch(`${api.baseUrl}/readyz`);
      expect(ready.status).toBe(503);
      const checks = ((await ready.json()) as { checks: Record<string, string> }).checks;
      expect(checks.redis).toMatch(/^failed/);
      expect(checks.worker_redis).toMatch(/^failed/);
      expect(checks.postgres).toBe('ok');
      const before = attempts;
      // a bound in reconnect attempts, not in time: 60 more of them
      await waitFor(async () => attempts >= before + 60, { timeoutMs: 120_000, intervalMs: 200, what: '60 reconnect attempts' });
      const lines = api.proc
        .output()
        .split('\n')
        .filter((l) => /"level":(40|50)/.test(l) && /redis|queue|worker/i.test(l));
      const msgs = [...new Set(lines.map((l) => (JSON.parse(l) as { msg: string }).msg))];
      report('redis-unusable-at-start', { reconnect_attempts: attempts, warn_lines: lines.length, msgs });
      // before: a line per distinct error of each of ten connections, queues and workers; now one budget per process
      expect(lines.length * 10).toBeLessThan(attempts);
    } finally {
      await killAll(procs.splice(0));
      for (const s of sockets) s.destroy();
      sink.close();
      await dropDatabase(env.DATABASE_URL!);
    }
  });
});
