import type { Cluster, Redis } from 'ioredis';

/** A connection to a single Redis (or Sentinel-managed primary) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * The prefix without its braces, for keys that carry a hash tag of their own
 * (rate limits per tenant, provider limiters per provider): the key's own tag
 * then decides its slot, so the keys of one Lua script share a slot by
 * construction and different tenants or providers spread over the cluster.
 */
export function keySpace(prefix: string): string {
  return prefix.replace(/[{}]/g, '');
}
