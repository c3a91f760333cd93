/**
 * The one place that turns configuration into Redis connections, for every
 * user of Redis: the producer (queues, rate limits, provider limiters, health)
 * and the workers (BullMQ). Standalone (REDIS_URL, parsed by ioredis itself:
 * query options, IPv6 brackets, rediss://), Cluster and Sentinel, each with
 * TLS (CA, client certificate, servername) and ACL user and password.
 *
 * Producer connections fail fast (one try, no offline queue): a request never
 * waits on a Redis that is away, Postgres keeps the run and the reconciler
 * enqueues it later. Worker connections retry forever (BullMQ needs
 * maxRetriesPerRequest: null for its blocking commands).
 */
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseURL } from 'ioredis/built/utils/index.js';
import { EnvError, HASH_TAG, parseHostList, redisMode, type Env } from './env.ts';
import type { Logger } from './logger.ts';

import type { RedisClient } from '../domain/shared/redis.ts';
export type { RedisClient } from '../domain/shared/redis.ts';
export { keySpace } from '../domain/shared/redis.ts';
export type RedisRole = 'producer' | 'worker';

export interface RedisTopology {
  mode: 'standalone' | 'cluster' | 'sentinel';
  url: string;
  username?: string;
  password?: string;
  tls?: TlsOptions;
  clusterNodes: { host: string; port: number }[];
  sentinels: { host: string; port: number }[];
  sentinelName: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
}

/** What the settings describe; reads the TLS files once (a missing file stops start-up, naming its variable). */
export function redisTopology(env: Env): RedisTopology {
  const mode = redisMode(env);
  // Read the URL the way ioredis does (decoded credentials, IPv6 without brackets), so what the topology
  // says is what a standalone connection given the same URL uses.
  const url = parseURL(env.REDIS_URL);
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const tlsOn = env.REDIS_TLS ?? (/^rediss:/i.test(env.REDIS_URL) || !!(env.REDIS_TLS_CA_FILE || env.REDIS_TLS_CERT_FILE));
  const read = (name: 'REDIS_TLS_CA_FILE' | 'REDIS_TLS_CERT_FILE' | 'REDIS_TLS_KEY_FILE') => {
    const path = env[name];
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new EnvError(`invalid configuration:\n  ${name} ("${path}"): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  let tls: TlsOptions | undefined;
  if (tlsOn) {
    tls = {};
    const ca = read('REDIS_TLS_CA_FILE');
    const cert = read('REDIS_TLS_CERT_FILE');
    const key = read('REDIS_TLS_KEY_FILE');
    if (ca) tls.ca = ca;
    if (cert) tls.cert = cert;
    if (key) tls.key = key;
    if (env.REDIS_TLS_SERVERNAME) tls.servername = env.REDIS_TLS_SERVERNAME;
  }
  return {
    mode,
    url: env.REDIS_URL,
    // the URL's own credentials count too (ioredis reads them in standalone mode); the separate settings win
    username: env.REDIS_USERNAME ?? text(url.username),
    password: env.REDIS_PASSWORD ?? text(url.password),
    tls,
    clusterNodes:
      mode !== 'cluster' ? [] : env.REDIS_CLUSTER_NODES ? parseHostList(env.REDIS_CLUSTER_NODES) : [{ host: text(url.host) ?? '', port: Number(text(url.port) ?? 6379) }],
    sentinels: mode === 'sentinel' && env.REDIS_SENTINELS ? parseHostList(env.REDIS_SENTINELS) : [],
    sentinelName: env.REDIS_SENTINEL_NAME,
    sentinelUsername: env.REDIS_SENTINEL_USERNAME,
    sentinelPassword: env.REDIS_SENTINEL_PASSWORD,
  };
}

/** Reconnects at most every 2 s (BullMQ's own default backs off to 20 s: workers would resume that late after an outage). */
const retryStrategy = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2_000);

function roleOptions(role: RedisRole): RedisOptions {
  return role === 'producer'
    ? { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2_000, retryStrategy }
    : { maxRetriesPerRequest: null, enableOfflineQueue: true, connectTimeout: 5_000, retryStrategy };
}

/** A new connection of `role` to the configured topology. The caller closes it. */
export function createRedis(t: RedisTopology, role: RedisRole, connectionName?: string): RedisClient {
  const base: RedisOptions = {
    ...roleOptions(role),
    ...(connectionName ? { connectionName } : {}),
    ...(t.username !== undefined ? { username: t.username } : {}),
    ...(t.password !== undefined ? { password: t.password } : {}),
    ...(t.tls ? { tls: t.tls } : {}),
  };
  if (t.mode === 'cluster') {
    const { enableOfflineQueue, ...redisOptions } = base;
    const opts: ClusterOptions = {
      redisOptions,
      enableOfflineQueue,
      clusterRetryStrategy: retryStrategy,
      // A master that died is noticed by its connection failing; ask the cluster for the new map soon after.
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 300,
      slotsRefreshTimeout: 2_000,
      // With TLS the certificate is checked against the name connected to: keep names as given instead of resolving them first.
      ...(t.tls ? { dnsLookup: (address: string, cb: (err: Error | null, address: string) => void) => cb(null, address) } : {}),
    };
    return new Cluster(t.clusterNodes, opts);
  }
  if (t.mode === 'sentinel') {
    return new Redis({
      ...base,
      sentinels: t.sentinels,
      name: t.sentinelName,
      ...(t.sentinelUsername !== undefined ? { sentinelUsername: t.sentinelUsername } : {}),
      ...(t.sentinelPassword !== undefined ? { sentinelPassword: t.sentinelPassword } : {}),
      ...(t.tls ? { enableTLSForSentinelMode: true, sentinelTLS: t.tls } : {}),
      sentinelRetryStrategy: retryStrategy,
      // Told by the sentinels when the master moves, instead of finding out from a dead or demoted connection.
      failoverDetector: true,
      // A demoted master answers writes with READONLY: reconnect (the sentinels name the new master) and resend.
      reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
    });
  }
  // ioredis parses the URL itself (query options such as ?family=6, IPv6 brackets, rediss://, db); options here win over it.
  return new Redis(t.url, base);
}

/**
 * The BullMQ prefix of one queue. On a cluster each queue gets a hash tag of
 * its own, derived from the prefix's (`{evalgate}` → `{evalgate:run-chunk}`):
 * one queue's keys share a slot, as BullMQ's scripts need, and the queues
 * spread over the masters instead of loading one. Elsewhere the prefix is used
 * as is (the keys stay where they were).
 */
export function queuePrefix(prefix: string, queueName: string, mode: RedisTopology['mode']): string {
  if (mode !== 'cluster') return prefix;
  return prefix.replace(HASH_TAG, (tag) => `${tag.slice(0, -1)}:${queueName}}`);
}


/**
 * Logs Redis connection errors at most once per `intervalMs` for the whole
 * process (every connection, queue and worker shares one budget, instead of
 * each logging its own reconnect attempts), with how many were left out, and
 * once per connection when it is back. A Redis that
 * is away for an hour costs a few hundred lines.
 */
const budget = { last: 0, suppressed: 0 };

export function logRedisErrors(client: EventEmitter, log: Logger, what: string, intervalMs = 10_000): void {
  let failing = false;
  client.on('error', (err: Error) => {
    failing = true;
    const now = Date.now();
    if (now - budget.last < intervalMs) {
      budget.suppressed++;
      return;
    }
    log.warn({ err: err.message, suppressed: budget.suppressed }, `redis (${what}) connection error`);
    budget.last = now;
    budget.suppressed = 0;
  });
  client.on('ready', () => {
    if (!failing) return;
    failing = false;
    log.info(`redis (${what}) connection ready again`);
  });
}
