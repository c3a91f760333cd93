/**
 * Per-provider limits shared by every worker process, kept in Redis:
 * a concurrency semaphore (a sorted set of leases that expire, so a killed
 * process cannot hold a slot for ever), a GCRA rate limit (requests per
 * minute), and a cooldown that a 429's Retry-After sets for everyone.
 * One Lua script decides atomically; Redis' clock is the only clock.
 *
 * The scripts are registered with `defineCommand`, so ioredis sends EVALSHA
 * (the source only once per connection, after a NOSCRIPT).
 *
 * Inside a process, waiters queue locally and one script call at a time
 * ("a round") speaks for all of them: it gives back the slots released since
 * the last round, then takes as many slots as are free for the waiters at the
 * head of the queue. 128 judging lanes waiting for 64 slots cost one poll per
 * 10–50 ms instead of 64, and a judged item costs a share of one Redis
 * command instead of a poll, an acquire and a release. A release here starts
 * a round at once, so a freed slot goes to the next local waiter without
 * waiting for a poll.
 *
 * The queue is ordered by the waiter's priority (smaller first), then first
 * come, first served: a judged chunk passes its start order, so the oldest
 * chunk is served first and chunks finish one after another instead of all at
 * once (when they all end together, the provider idles while the next chunk
 * jobs are fetched and loaded).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { keySpace, type RedisClient as Redis } from '../../shared/redis.ts';
import { onAbort } from './abort.ts';

/** The scripts (KEYS and ARGV are described in each file), read once when this module loads. */
const ROUND = readFileSync(new URL('./limiter-round-4.lua', import.meta.url), 'utf8');
const COOLDOWN = readFileSync(new URL('./limiter-cooldown-1.lua', import.meta.url), 'utf8');

/** Command names on the (possibly shared) connection; versioned so a changed script never meets an old definition. */
const ROUND_CMD = 'evalgateLimiterRoundV2';
const COOLDOWN_CMD = 'evalgateLimiterCooldownV1';

interface LimiterCommands {
  [ROUND_CMD](
    inflight: string,
    rate: string,
    cooldown: string,
    waiting: string,
    concurrency: number,
    leaseMs: number,
    interval: number,
    burst: number,
    tokenBase: string,
    wanted: number,
    instance: string,
    held: number,
    ...release: string[]
  ): Promise<[number, number]>;
  [COOLDOWN_CMD](cooldown: string, ms: number): Promise<number>;
}

/** Defines the scripts once per connection (defineCommand is per client; other modules may share it). */
function withCommands(redis: Redis): Redis & LimiterCommands {
  const r = redis as Redis & Partial<LimiterCommands>;
  if (typeof r[ROUND_CMD] !== 'function') redis.defineCommand(ROUND_CMD, { numberOfKeys: 4, lua: ROUND });
  if (typeof r[COOLDOWN_CMD] !== 'function') redis.defineCommand(COOLDOWN_CMD, { numberOfKeys: 1, lua: COOLDOWN });
  return redis as Redis & LimiterCommands;
}

export interface LimiterOptions {
  concurrency: number;
  rpm: number;
  /** How long a slot is held at most (a request's timeout plus margin). */
  leaseMs: number;
}

type Release = () => Promise<void>;

interface Waiter {
  priority: number;
  seq: number;
  settled: boolean;
  resolve(release: Release): void;
  reject(err: unknown): void;
  unsubscribe(): void;
}

/** Limiters by connection and provider, so every judge of this process queues for a provider in one line. */
const shared = new WeakMap<Redis, Map<string, ProviderLimiter>>();

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

export class ProviderLimiter {
  /** The process-wide limiter for this provider on this connection. */
  static for(redis: Redis, prefix: string, provider: string, opts: LimiterOptions): ProviderLimiter {
    let byKey = shared.get(redis);
    if (!byKey) shared.set(redis, (byKey = new Map()));
    const key = JSON.stringify([prefix, provider, opts.concurrency, opts.rpm, opts.leaseMs]);
    let limiter = byKey.get(key);
    if (!limiter) byKey.set(key, (limiter = new ProviderLimiter(redis, prefix, provider, opts)));
    return limiter;
  }

  private readonly keys: [string, string, string, string];
  /** This limiter's id in the `waiting` set. */
  private readonly instance = randomUUID();
  /** Slots this process holds (granted, release not yet sent). */
  private held = 0;
  private readonly redis: Redis & LimiterCommands;
  private readonly interval: number;
  /** A second's worth of requests may go at once; at least one. */
  private readonly burst: number;
  /** Sorted by (priority, seq); settled waiters are dropped after each round. */
  private queue: Waiter[] = [];
  private live = 0;
  private seq = 0;
  /** Slots given back since the last round, with whoever waits for that to be done. */
  private releases: { token: string; done: () => void }[] = [];
  private driving = false;
  /** Ends the driver's wait early (a slot was released here, or every waiter left). */
  private wake: (() => void) | null = null;

  constructor(
    redis: Redis,
    prefix: string,
    provider: string,
    private readonly opts: LimiterOptions,
  ) {
    this.redis = withCommands(redis);
    // One hash tag of the limiter's own (not the prefix's, keySpace drops that), so the four keys live in one
    // Redis Cluster slot by construction and the providers' limiters spread over the masters.
    const base = `${keySpace(prefix)}:{limiter:${provider}}`;
    this.keys = [`${base}:inflight`, `${base}:rate`, `${base}:cooldown`, `${base}:waiting`];
    this.interval = 60_000 / opts.rpm;
    this.burst = Math.max(1, Math.floor(opts.rpm / 60));
  }

  /**
   * Waits for a slot (concurrency, rate and cooldown all allowing); returns the release function.
   * Waiters with a smaller `priority` are served first; equal ones in order of arrival.
   * Rejects with the signal's reason when it aborts first, or with Redis' error.
   */
  acquire(signal: AbortSignal, priority = 0): Promise<Release> {
    signal.throwIfAborted();
    return new Promise<Release>((resolve, reject) => {
      const w: Waiter = { priority, seq: this.seq++, settled: false, resolve, reject, unsubscribe: () => undefined };
      w.unsubscribe = onAbort(signal, () => {
        if (w.settled) return;
        this.settle(w);
        reject(signal.reason);
        if (this.live === 0) this.wake?.();
      });
      this.enqueue(w);
      this.live++;
      this.kick();
    });
  }

  /** After a 429: nobody sends to this provider for `ms`. */
  async coolDown(ms: number): Promise<void> {
    await this.redis[COOLDOWN_CMD](this.keys[2], Math.max(1, Math.round(ms)));
  }

  private enqueue(w: Waiter): void {
    const q = this.queue;
    const before = (a: Waiter, b: Waiter) => a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq);
    let i = q.length;
    while (i > 0 && before(w, q[i - 1] as Waiter)) i--;
    if (i === q.length) q.push(w);
    else q.splice(i, 0, w);
  }

  private settle(w: Waiter): void {
    w.settled = true;
    w.unsubscribe();
    this.live--;
  }

  /** Gives the slot back in the next round (at once: a release wakes the driver). */
  private release(token: string): Promise<void> {
    return new Promise<void>((done) => {
      this.releases.push({ token, done });
      this.kick();
    });
  }

  private kick(): void {
    if (this.driving) {
      if (this.releases.length > 0) this.wake?.();
    } else {
      void this.drive();
    }
  }

  /** Runs rounds while anyone waits or a release is pending; one driver, one round in flight at a time. */
  private async drive(): Promise<void> {
    this.driving = true;
    try {
      for (;;) {
        // Let everything released or queued in this turn of the event loop join the round.
        await nextTick();
        if (this.releases.length === 0 && this.live === 0) return;
        const why = await this.round();
        if (why === 0 || this.releases.length > 0 || this.live === 0) continue;
        // -1: every slot is taken; poll soon, with jitter so processes do not move in lockstep (a release here wakes us).
        // > 0: cooldown or rate limit; wait that long (releases meanwhile still go out at once).
        await this.pause(why < 0 ? 10 + Math.random() * 40 : Math.min(why, 60_000) + Math.random() * 20);
      }
    } finally {
      this.driving = false;
    }
  }

  /** One script call: the pending releases, and slots for the first waiters. Returns why not everyone got one. */
  private async round(): Promise<number> {
    const releases = this.releases;
    this.releases = [];
    const candidates: Waiter[] = [];
    for (const w of this.queue) {
      if (candidates.length >= Math.min(this.live, this.opts.concurrency)) break;
      if (!w.settled) candidates.push(w);
    }
    const base = randomUUID();
    let granted = 0;
    let why = 0;
    try {
      const { concurrency, leaseMs } = this.opts;
      const tokens = releases.map((r) => r.token);
      this.held -= tokens.length; // sent: given back, or (if this call fails) left to expire
      const reply = await this.redis[ROUND_CMD](...this.keys, concurrency, leaseMs, this.interval, this.burst, base, candidates.length, this.instance, this.held, ...tokens);
      [granted, why] = reply.map(Number) as [number, number];
      this.held += granted;
    } catch (err) {
      // Redis failed: these waiters get the error (as if each had asked itself); later ones try again.
      // Unsent releases are dropped: their leases expire.
      for (const w of candidates) {
        if (!w.settled) {
          this.settle(w);
          w.reject(err);
        }
      }
      this.compact();
      for (const r of releases) r.done();
      return 0;
    }
    for (let i = 0; i < granted; i++) {
      const w = candidates[i] as Waiter;
      const token = `${base}:${i + 1}`;
      if (w.settled) {
        this.releases.push({ token, done: () => undefined }); // it left while we asked: the next round gives the slot back
      } else {
        this.settle(w);
        w.resolve(() => this.release(token));
      }
    }
    this.compact();
    for (const r of releases) r.done();
    return why;
  }

  private compact(): void {
    if (this.queue.length > this.live) this.queue = this.queue.filter((w) => !w.settled);
  }

  /** Waits `ms`, or less when woken: by a release here, or when nobody waits any more. */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
