/**
 * Per-tenant and per-credential limits on writes, counted in Redis so every
 * API process shares them. If Redis is unreachable an in-process limiter of
 * the same size takes over (writes stay limited, per process, instead of
 * failing or going unlimited).
 */
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts } from 'rate-limiter-flexible';
import type { Principal } from './auth.ts';
import { DomainError } from './errors.ts';

export interface WriteLimits {
  tenantPerMinute: number;
  actorPerMinute: number;
}

export class RateLimitedError extends DomainError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('TOO_MANY_REQUESTS', message);
  }
}

const LIMIT_TIMEOUT_MS = 500;

export class WriteRateLimiter {
  private readonly tenant: RLWrapperTimeouts;
  private readonly actor: RLWrapperTimeouts;

  constructor(redis: Redis, prefix: string, limits: WriteLimits) {
    const make = (name: string, points: number) =>
      // A Redis that holds the connection but never answers (frozen, partitioned) would hold every
      // write request for as long as it lasts: after LIMIT_TIMEOUT_MS the in-process limiter decides.
      new RLWrapperTimeouts({
        timeoutMs: LIMIT_TIMEOUT_MS,
        limiter: new RateLimiterRedis({
          storeClient: redis,
          keyPrefix: `${prefix}:ratelimit:${name}`,
          points,
          duration: 60,
          insuranceLimiter: new RateLimiterMemory({ keyPrefix: `${name}-local`, points, duration: 60 }),
        }),
      });
    this.tenant = make('tenant', limits.tenantPerMinute);
    this.actor = make('actor', limits.actorPerMinute);
  }

  /** Counts one write; throws RateLimitedError (429) with the seconds until the next one is allowed. */
  async consume(p: Principal): Promise<void> {
    for (const [limiter, key, what] of [
      [this.actor, p.actor, 'this API key or session'],
      [this.tenant, p.tenantId, 'this organization'],
    ] as const) {
      try {
        await limiter.consume(key);
      } catch (res) {
        if (res instanceof RateLimiterRes) {
          const seconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
          throw new RateLimitedError(`too many writes for ${what}; retry in ${seconds} s`, seconds);
        }
        throw res;
      }
    }
  }
}
