/**
 * The judge's provider client and provider limiter on their own, against real
 * local HTTP servers (the fake provider, and a few hostile ones) and the
 * machine's Redis: outcome classification, Retry-After, the timeout covering
 * the whole request, cancellation of an in-flight request, the response size
 * bound, the key never in a message; the limiter's shared concurrency across
 * connections, its priority order, and waiters that give up.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { callChatCompletions, MAX_RESPONSE_BYTES, type ChatRequest } from '../../domain/evaluators/llm-judge/provider-client.ts';
import { ProviderLimiter } from '../../domain/evaluators/llm-judge/provider-limiter.ts';
import { providerSchema } from '../../server/env.ts';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.ts';
import { deleteKeys, REDIS_URL, uniqueName, waitFor } from '../helpers/stack.ts';

const KEY = 'sk-client-test-0123456789';
const REQ: ChatRequest = { model: 'm', messages: [{ role: 'user', content: 'OUTPUT: a\nEXPECTED: a' }], responseFormat: { type: 'json_object' } };
const provider = (base_url: string, extra: Record<string, unknown> = {}) => providerSchema.parse({ base_url, api_key: KEY, timeout_ms: 1_000, ...extra });

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}
async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

describe('provider client', () => {
  let fake: FakeLlm;
  beforeAll(async () => {
    fake = await startFakeLlm();
  });
  afterAll(async () => fake?.close());
  beforeEach(() => fake.reset());

  it('returns the answer and usage, sending the key only as the bearer token', async () => {
    const out = await callChatCompletions(provider(`${fake.url}/`), REQ, new AbortController().signal);
    expect(out).toEqual({ kind: 'answer', text: JSON.stringify({ score: 10, reasoning: 'matches the expected answer' }), usage: { prompt_tokens: 6, completion_tokens: 12 }, finish_reason: 'stop' });
    expect([...fake.stats.authorization]).toEqual([`Bearer ${KEY}`]);
  });

  it('classifies 429 (with Retry-After), 5xx, 401 and an unparsable envelope', async () => {
    const p = provider(fake.url);
    const never = new AbortController().signal;
    fake.reset({ rate429: 1, retryAfterSeconds: 7 });
    expect(await callChatCompletions(p, REQ, never)).toEqual({ kind: 'rate_limited', retryAfterMs: 7_000 });
    fake.reset({ fail5xxNext: 1 });
    expect(await callChatCompletions(p, REQ, never)).toMatchObject({ kind: 'transient', message: expect.stringMatching(/^HTTP 500: .*upstream exploded/) });
    fake.reset({ unauthorized: true });
    expect(await callChatCompletions(p, REQ, never)).toMatchObject({ kind: 'auth', status: 401, message: expect.stringMatching(/Incorrect API key/) });
    fake.reset({ answer: 'malformed_json' });
    expect(await callChatCompletions(p, REQ, never)).toMatchObject({ kind: 'answer', text: '{"choices": [ {"message": ' });
  });

  it('times out a request that never answers, as a transient outcome', async () => {
    fake.reset({ hangNext: 1 });
    const out = await callChatCompletions(provider(fake.url, { timeout_ms: 300 }), REQ, new AbortController().signal);
    expect(out).toEqual({ kind: 'transient', message: 'no answer within 300 ms' });
    // The request the fake held open was the one timed out, and the client closed it (counted, not timed).
    expect(fake.stats.hung).toBe(1);
    await waitFor(async () => fake.stats.inFlight === 0, { timeoutMs: 10_000, what: 'the hung request to be closed by the client' });
  });

  it('the timeout covers the body too: a response that trickles is cut off', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"choices": [');
      const t = setInterval(() => res.write(' '), 50);
      res.on('close', () => clearInterval(t));
    });
    const url = await listen(server);
    try {
      expect(await callChatCompletions(provider(url, { timeout_ms: 300 }), REQ, new AbortController().signal)).toEqual({ kind: 'transient', message: 'no answer within 300 ms' });
    } finally {
      await close(server);
    }
  });

  it('an aborted signal stops the in-flight request at once and throws its reason', async () => {
    fake.reset({ latencyMs: 5_000 });
    const ac = new AbortController();
    const reason = new Error('run is canceled');
    const pending = callChatCompletions(provider(fake.url, { timeout_ms: 10_000 }), REQ, ac.signal);
    await sleep(100);
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
    // The provider answers after 5 s; nothing was answered yet, so the abort did not wait for it.
    expect(fake.stats.ok).toBe(0);
    await expect(callChatCompletions(provider(fake.url), REQ, ac.signal)).rejects.toBe(reason);
  });

  it('does not buffer a response larger than the bound', async () => {
    const big = Buffer.alloc(MAX_RESPONSE_BYTES + 1024, 'x');
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(big);
    });
    const url = await listen(server);
    try {
      expect(await callChatCompletions(provider(url), REQ, new AbortController().signal)).toMatchObject({
        kind: 'transient',
        message: expect.stringMatching(/larger than/),
      });
    } finally {
      await close(server);
    }
  });

  it('never puts the key in a message, even when the provider echoes it', async () => {
    const server = createServer((req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${String(req.headers.authorization)}` } }));
    });
    const url = await listen(server);
    try {
      const out = await callChatCompletions(provider(url), REQ, new AbortController().signal);
      expect(out).toMatchObject({ kind: 'auth', status: 401 });
      expect(JSON.stringify(out)).not.toContain(KEY);
      expect(JSON.stringify(out)).toContain('[redacted]');
    } finally {
      await close(server);
    }
    // a refused connection is transient, and its message names no key either
    const refused = await callChatCompletions(provider(url), REQ, new AbortController().signal);
    expect(refused).toMatchObject({ kind: 'transient', message: expect.stringMatching(/^request failed: /) });
    expect(JSON.stringify(refused)).not.toContain(KEY);
  });
});

describe('provider limiter', () => {
  const conns: Redis[] = [];
  const prefix = uniqueName('limiter-test');
  const connect = () => {
    const c = new Redis(REDIS_URL);
    conns.push(c);
    return c;
  };
  afterAll(async () => {
    if (conns[0]) await deleteKeys(conns[0], `${prefix}:*`);
    for (const c of conns) c.disconnect();
  });

  it('two connections (processes) together never hold more than the concurrency', async () => {
    const opts = { concurrency: 5, rpm: 1_000_000, leaseMs: 10_000 };
    const limiters = [connect(), connect()].map((c) => ProviderLimiter.for(c, prefix, 'shared', opts));
    expect(ProviderLimiter.for(conns[0] as Redis, prefix, 'shared', opts)).toBe(limiters[0]);
    const signal = new AbortController().signal;
    let held = 0;
    let max = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: 24 }, async (_, lane) => {
        while (next++ < 200) {
          const release = await (limiters[lane % 2] as ProviderLimiter).acquire(signal);
          held++;
          max = Math.max(max, held);
          await sleep(5);
          held--;
          await release();
        }
      }),
    );
    expect(max).toBe(5);
    expect(await (conns[0] as Redis).zcard(`${prefix}:{limiter:shared}:inflight`)).toBe(0);
  });

  it('shares the slots between processes that both wait, instead of one re-taking all it releases', async () => {
    const opts = { concurrency: 4, rpm: 1_000_000, leaseMs: 10_000 };
    const limiters = [connect(), connect()].map((c) => ProviderLimiter.for(c, prefix, 'fair', opts));
    const signal = new AbortController().signal;
    const got: [number, number] = [0, 0];
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async (_, lane) => {
        while (next++ < 400) {
          const release = await (limiters[lane % 2] as ProviderLimiter).acquire(signal);
          got[(lane % 2) as 0 | 1]++;
          await sleep(5);
          await release();
        }
      }),
    );
    expect(Math.min(...got)).toBeGreaterThan(120);
  });

  it('serves smaller priorities first, equal ones in order, and skips waiters that gave up', async () => {
    const limiter = ProviderLimiter.for(connect(), prefix, 'ordered', { concurrency: 1, rpm: 1_000_000, leaseMs: 10_000 });
    const never = new AbortController().signal;
    const first = await limiter.acquire(never, 5);
    const served: string[] = [];
    const leaving = new AbortController();
    const wait = (name: string, priority: number, signal = never) =>
      limiter.acquire(signal, priority).then(async (release) => {
        served.push(name);
        await sleep(5);
        await release();
      });
    const all = [wait('late-1', 2), wait('late-2', 2), wait('gives-up', 0, leaving.signal).catch(() => served.push('(gave up)')), wait('early', 1)];
    await sleep(50);
    leaving.abort(new Error('gone'));
    await sleep(20);
    await first();
    await Promise.all(all);
    expect(served).toEqual(['(gave up)', 'early', 'late-1', 'late-2']);
    expect(await (conns[0] as Redis).zcard(`${prefix}:{limiter:ordered}:inflight`)).toBe(0);
  });
});
