/**
 * /healthz, /readyz and a /metrics scrape while Redis goes away and comes
 * back: a disposable redis-server of this file's own, stopped and restarted
 * on the same port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDisposableRedis, type DisposableRedis } from '../helpers/processes.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

interface Readiness {
  status: string;
  checks: Record<string, string>;
}

describe('readiness follows Redis', () => {
  let redis: DisposableRedis;
  let s: Stack;
  let redisDown = false;
  beforeAll(async () => {
    redis = await startDisposableRedis();
    // No in-process workers: a BullMQ Worker closed while its connection is still reconnecting never finishes
    // closing, which would hang this file's teardown.
    s = await startStack({ env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    if (redisDown) await redis.start(); // close() cleans up the queue keys through it
    await s?.close();
    await redis?.stop();
  });

  const probe = async (path: string) => {
    const res = await fetch(`${s.baseUrl}${path}`);
    return { status: res.status, body: (await res.json()) as Readiness };
  };

  it('is ready, then 503 naming redis while it is down, then ready again once it is back', async () => {
    const before = await probe('/readyz');
    expect(before).toEqual({ status: 200, body: { status: 'ok', checks: { postgres: 'ok', redis: 'ok', migrations: 'ok' } } });

    await redis.stop();
    redisDown = true;
    const down = await waitFor(async () => {
      const r = await probe('/readyz');
      return r.status === 503 ? r : null;
    }, { timeoutMs: 20_000, what: '/readyz to answer 503' });
    expect(down.body.status).toBe('unavailable');
    expect(down.body.checks.redis).toMatch(/^failed: .+/);
    expect(down.body.checks).toMatchObject({ postgres: 'ok', migrations: 'ok' });
    // Liveness does not depend on Redis: restarting the process would not bring Redis back.
    expect((await probe('/healthz')).status).toBe(200);
    // A scrape still answers, without the queue series it cannot read.
    const scrape = await fetch(`${s.baseUrl}/metrics`);
    expect(scrape.status).toBe(200);
    const text = await scrape.text();
    expect(text).toMatch(/^evalgate_runs\{status="pending"\} 0$/m);
    expect(text).not.toMatch(/^evalgate_queue_jobs\{/m);

    await redis.start();
    redisDown = false;
    const back = await waitFor(async () => {
      const r = await probe('/readyz');
      return r.status === 200 ? r : null;
    }, { timeoutMs: 20_000, what: '/readyz to answer 200 again' });
    expect(back.body).toEqual({ status: 'ok', checks: { postgres: 'ok', redis: 'ok', migrations: 'ok' } });
    const later = await (await fetch(`${s.baseUrl}/metrics`)).text();
    expect(later).toMatch(/^evalgate_queue_jobs\{queue="run-chunk",state="waiting"\} 0$/m);
  });
});
