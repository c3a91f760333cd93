/**
 * Redis settings (server/env.ts, server/redis.ts) without a server: which
 * topology a configuration describes, the cluster's hash-tag rule, host lists
 * with IPv6, and the key layout that keeps each Lua script in one slot.
 */
import { describe, expect, it } from 'vitest';
import { EnvError, loadEnv, parseHostList, redisMode } from '../../server/env.ts';
import { keySpace, queuePrefix, redisTopology } from '../../server/redis.ts';

describe('Redis configuration', () => {
  it('infers the mode from the lists that are set', () => {
    expect(redisMode(loadEnv({}))).toBe('standalone');
    expect(redisMode(loadEnv({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', EVALGATE_QUEUE_PREFIX: '{eg}' }))).toBe('cluster');
    expect(redisMode(loadEnv({ REDIS_SENTINELS: '127.0.0.1:26379' }))).toBe('sentinel');
  });

  it('refuses a cluster prefix without a hash tag, and contradictory settings, naming the variables', () => {
    expect(() => loadEnv({ REDIS_MODE: 'cluster' })).toThrow(EnvError);
    expect(() => loadEnv({ REDIS_MODE: 'cluster', EVALGATE_QUEUE_PREFIX: 'eg{}' })).toThrow(/EVALGATE_QUEUE_PREFIX/);
    expect(() => loadEnv({ REDIS_MODE: 'sentinel' })).toThrow(/REDIS_SENTINELS/);
    expect(() => loadEnv({ REDIS_MODE: 'standalone', REDIS_SENTINELS: 'a:1' })).toThrow(/REDIS_SENTINELS/);
    expect(() => loadEnv({ REDIS_SENTINELS: 'a:1', REDIS_TLS_CERT_FILE: '/x' })).toThrow(/REDIS_TLS_KEY_FILE/);
    expect(() => loadEnv({ REDIS_SENTINELS: 'a:99999' })).toThrow(/REDIS_SENTINELS/);
  });

  it('parses host lists without IPv6 brackets (a bracketed name fails DNS: ENOTFOUND [::1])', () => {
    expect(parseHostList('[::1]:7000, 10.0.0.2:7001,redis-3.local:7002')).toEqual([
      { host: '::1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: 'redis-3.local', port: 7002 },
    ]);
    expect(() => parseHostList('::1:7000')).toThrow(/host:port/);
    // cluster mode seeded from REDIS_URL: brackets dropped as well
    expect(redisTopology(loadEnv({ REDIS_MODE: 'cluster', REDIS_URL: 'redis://[::1]:7000', EVALGATE_QUEUE_PREFIX: '{eg}' })).clusterNodes).toEqual([{ host: '::1', port: 7000 }]);
  });

  it('takes credentials from the URL unless set apart, and TLS from rediss://', () => {
    const fromUrl = redisTopology(loadEnv({ REDIS_URL: 'rediss://u%40x:p%3Aw@host:6380' }));
    expect(fromUrl).toMatchObject({ username: 'u@x', password: 'p:w', tls: {} });
    expect(redisTopology(loadEnv({ REDIS_URL: 'redis://u:p@host', REDIS_PASSWORD: 'other' })).password).toBe('other');
    expect(redisTopology(loadEnv({})).tls).toBeUndefined();
    expect(() => redisTopology(loadEnv({ REDIS_TLS_CA_FILE: '/nonexistent/ca.pem' }))).toThrow(/REDIS_TLS_CA_FILE .*ENOENT/);
  });

  it('gives each queue its own hash tag on a cluster only, and Lua keys a tag of their own', () => {
    expect(queuePrefix('{evalgate}', 'run-chunk', 'cluster')).toBe('{evalgate:run-chunk}');
    expect(queuePrefix('app{eg}x', 'reconcile', 'cluster')).toBe('app{eg:reconcile}x');
    expect(queuePrefix('{evalgate}', 'run-chunk', 'standalone')).toBe('{evalgate}');
    expect(queuePrefix('evalgate', 'run-chunk', 'sentinel')).toBe('evalgate');
    expect(keySpace('{evalgate}')).toBe('evalgate');
  });
});
