/**
 * A real evalgate stack for one test file: its own PostgreSQL database and its
 * own BullMQ queue prefix on the machine's services, so files run in parallel
 * and the suite can run twice. No mocks.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import pino from 'pino';
import { startWorkers, type Workers } from '../../server/workers.ts';
import { createContainer, type Container } from '../../server/container.ts';
import { dropDatabase } from '../../server/db.ts';
import { loadEnv, type Env } from '../../server/env.ts';
import type { Logger } from '../../server/logger.ts';
import { buildApp, type App } from '../../server/http.ts';

export const PG_BASE = process.env.TEST_DATABASE_BASE_URL ?? 'postgres://postgres@127.0.0.1:5432';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export interface StackOptions {
  env?: Record<string, string>;
  workers?: boolean;
  http?: boolean;
  /** The stack's logger (default: pino at LOG_LEVEL to stdout); a test that reads the logs passes its own. */
  log?: Logger;
}

export interface Stack {
  env: Env;
  container: Container;
  app?: App;
  baseUrl: string;
  workers?: Workers;
  /** A Redis connection for assertions (not the app's). */
  redis: Redis;
  close(): Promise<void>;
}

/** Env for a test: fresh database and queue prefix unless given. */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const db = uniqueName('evalgate_t');
  return {
    NODE_ENV: 'test',
    DATABASE_URL: `${PG_BASE}/${db}`,
    REDIS_URL,
    EVALGATE_QUEUE_PREFIX: uniqueName('egt'),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATABASE_POOL_MAX: '10',
    ...overrides,
  };
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const raw = testEnv(opts.env);
  const env = loadEnv(raw);
  const container = await createContainer(env, { log: opts.log ?? pino({ level: env.LOG_LEVEL }) });
  const workers = opts.workers ? await startWorkers(container) : undefined;
  let app: App | undefined;
  let baseUrl = '';
  if (opts.http ?? true) {
    app = await buildApp(container, { workers });
    await app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }
  const redis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined); // tests that stop Redis expect this connection to fail
  return {
    env,
    container,
    app,
    baseUrl,
    workers,
    redis,
    async close() {
      await app?.close();
      await workers?.close(5_000);
      for (const q of container.queues.all()) await q.obliterate({ force: true }).catch(() => undefined);
      await deleteKeys(redis, `${env.EVALGATE_QUEUE_PREFIX}:*`);
      await container.close();
      redis.disconnect();
      await dropDatabase(env.DATABASE_URL);
    },
  };
}

export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

/** Polls `fn` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
