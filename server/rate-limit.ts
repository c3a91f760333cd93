/**
 * Per-tenant and per-credential limits on writes, counted in Redis so every
 * API process shares them: fixed one-minute windows, both keys checked and
 * counted by one Lua script (one round trip per write, atomic: a write refused
 * by either limit counts against neither, so a credential over its own limit
 * cannot use up its organization's budget).
 *
 * If Redis fails or does not answer within LIMIT_TIMEOUT_MS (down, frozen,
 * partitioned), in-process limiters of the same sizes decide instead: writes
 * stay limited, per process, rather than failing or going unlimited.
 */
import { readFileSync } from 'node:fs';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Principal } from './auth.ts';
import { withDeadline } from '../domain/shared/deadline.ts';
import { RateLimitedError } from '../domain/shared/errors.ts';
import { keySpace, type RedisClient } from './redis.ts';

export interface WriteLimits {
  tenantPerMinute: number;
  actorPerMinute: number;
}

const LIMIT_TIMEOUT_MS = 500;

/**
 * The credential's bucket, inside its tenant: a JWT subject is only unique
 * within its issuer's organization (one person in two orgs has one `sub`),
 * so two tenants never share a bucket and one cannot spend the other's.
 */
const actorKey = (p: Principal) => `${p.tenantId}:${p.actor}`;
const WINDOW_MS = 60_000;

/** The check-and-count script (KEYS, ARGV and the answer are described in the file). */
const CONSUME_BOTH = readFileSync(new URL('./rate-limit.consume-writes-2.lua', import.meta.url), 'utf8');

type LimiterRedis = RedisClient & { evalgateConsumeWrites(actorKey: string, tenantKey: string, actorLimit: number, tenantLimit: number, windowMs: number): Promise<[number, number]> };

const WHAT = ['', 'this API key or session', 'this organization'] as const;

export class WriteRateLimiter {
  private readonly redis: LimiterRedis;
  private readonly local: { actor: RateLimiterMemory; tenant: RateLimiterMemory };

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly limits: WriteLimits,
    /** Told every time the per-process limiters decide instead (never silently: a Redis error here, e.g. CROSSSLOT, is a misconfiguration to see). */
    private readonly onFallback: (err: Error) => void = () => undefined,
  ) {
    // EVALSHA after the first call; defineCommand on a connection is idempotent for the same name.
    if (!('evalgateConsumeWrites' in redis)) redis.defineCommand('evalgateConsumeWrites', { numberOfKeys: 2, lua: CONSUME_BOTH });
    this.redis = redis as LimiterRedis;
    this.local = {
      actor: new RateLimiterMemory({ keyPrefix: 'actor-local', points: limits.actorPerMinute, duration: WINDOW_MS / 1000 }),
      tenant: new RateLimiterMemory({ keyPrefix: 'tenant-local', points: limits.tenantPerMinute, duration: WINDOW_MS / 1000 }),
    };
  }

  /** Counts one write; throws RateLimitedError (429) with the seconds until the next one is allowed. */
  async consume(p: Principal): Promise<void> {
    let verdict: [number, number];
    try {
      verdict = await withDeadline(
        this.redis.evalgateConsumeWrites(
          ...this.keys(p),
          this.limits.actorPerMinute,
          this.limits.tenantPerMinute,
          WINDOW_MS,
        ),
        LIMIT_TIMEOUT_MS,
        'rate limit store',
      );
    } catch (err) {
      this.onFallback(err as Error);
      verdict = await this.consumeLocally(p);
    }
    const [which, ms] = verdict;
    if (which === 1 || which === 2) {
      const seconds = Math.max(1, Math.ceil(ms / 1000));
      throw new RateLimitedError(`too many writes for ${WHAT[which]}; retry in ${seconds} s`, seconds);
    }
  }

  /**
   * Both keys of the script carry the tenant as their hash tag (an actor belongs to one tenant), so they share a
   * Redis Cluster slot by construction, and tenants spread over the cluster.
   */
  private keys(p: Principal): [string, string] {
    const base = `${keySpace(this.prefix)}:ratelimit:{${p.tenantId}}`;
    return [`${base}:actor:${p.actor}`, `${base}:tenant`];
  }

  private async consumeLocally(p: Principal): Promise<[number, number]> {
    const steps = [
      [1, this.local.actor, actorKey(p)],
      [2, this.local.tenant, p.tenantId],
    ] as const;
    for (const [which, limiter, key] of steps) {
      try {
        await limiter.consume(key);
      } catch (res) {
        if (res instanceof RateLimiterRes) return [which, res.msBeforeNext];
        throw res;
      }
    }
    return [0, 0];
  }
}
