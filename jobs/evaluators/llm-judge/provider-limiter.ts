/**
 * Per-provider limits shared by every worker process, kept in Redis:
 * a concurrency semaphore (a sorted set of leases that expire, so a killed
 * process cannot hold a slot for ever), a GCRA rate limit (requests per
 * minute), and a cooldown that a 429's Retry-After sets for everyone.
 * One Lua script decides atomically; Redis' clock is the only clock.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cooldown = tonumber(redis.call('GET', KEYS[3]) or '0')
if cooldown > now then return cooldown - now end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
local interval = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat < now then tat = now end
local newTat = tat + interval
local wait = newTat - now - interval * burst
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[2], newTat, 'PX', math.ceil(newTat - now) + 60000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 0
`;

const COOLDOWN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilMs = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untilMs > current then redis.call('SET', KEYS[1], untilMs, 'PX', tonumber(ARGV[1]) + 1000) end
return untilMs - now
`;

export interface LimiterOptions {
  concurrency: number;
  rpm: number;
  /** How long a slot is held at most (a request's timeout plus margin). */
  leaseMs: number;
}

export class ProviderLimiter {
  private readonly keys: [string, string, string];

  constructor(
    private readonly redis: Redis,
    prefix: string,
    provider: string,
    private readonly opts: LimiterOptions,
  ) {
    // One hash tag, so the three keys live in one Redis Cluster slot.
    const base = `${prefix}:{limiter:${provider}}`;
    this.keys = [`${base}:inflight`, `${base}:rate`, `${base}:cooldown`];
  }

  /** Waits for a slot (concurrency, rate and cooldown all allowing); returns the release function. */
  async acquire(signal: AbortSignal): Promise<() => Promise<void>> {
    const token = randomUUID();
    const interval = 60_000 / this.opts.rpm;
    // A second's worth of requests may go at once; at least one.
    const burst = Math.max(1, Math.floor(this.opts.rpm / 60));
    for (;;) {
      signal.throwIfAborted();
      const r = Number(await this.redis.eval(ACQUIRE, 3, ...this.keys, token, this.opts.concurrency, this.opts.leaseMs, interval, burst));
      if (r === 0) {
        return async () => {
          await this.redis.zrem(this.keys[0], token).catch(() => undefined); // the lease expires anyway
        };
      }
      // -1: every slot is taken; poll soon, with jitter so waiters do not move in lockstep
      const wait = r < 0 ? 10 + Math.random() * 40 : Math.min(r, 60_000) + Math.random() * 20;
      await sleep(wait, undefined, { signal });
    }
  }

  /** After a 429: nobody sends to this provider for `ms`. */
  async coolDown(ms: number): Promise<void> {
    await this.redis.eval(COOLDOWN, 1, this.keys[2], Math.max(1, Math.round(ms)));
  }
}
