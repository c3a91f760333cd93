/**
 * The `http` target against a real local application (test/helpers/fake-app.ts)
 * and the machine's Redis (the endpoint's limiter): the body rendered from the
 * item, the output found at output_path, the retry policy (429s wait without
 * using an attempt, 5xx and timeouts use one, a missing output is retried then
 * the item's error), 401 failing the run, the credentials never in a message
 * or an answer, non-public endpoints refused unless allow_private, a hostile
 * answer bounded, and every request claimed before it is sent.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Agent, type Dispatcher } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EvalItem } from '../../domain/evaluators/types.ts';
import { ItemRequestError, TargetAuthError, type GenerateContext, type GenerateOutcome } from '../../domain/targets/generation.ts';
import { HttpTarget, MAX_RESPONSE_BYTES } from '../../domain/targets/http-target.ts';
import { httpTarget } from '../../domain/targets/target.schema.ts';
import type { Resolve } from '../../domain/webhooks/webhook-target.ts';
import { EnvError, loadEnv, targetEndpointSchema } from '../../server/env.ts';
import { startFakeApp, type FakeApp } from '../helpers/fake-app.ts';
import { deleteKeys, REDIS_URL, waitFor } from '../helpers/stack.ts';

const SECRET = 'sk-app-secret-0123456789abcdef';
const prefix = `evalgate-test-http-${randomUUID()}`;
const ITEM: EvalItem = { input: { question: 'what is 2+2?', n: [1, 2] }, output: null, expected_output: '4', metadata: { tag: 'math' } };

let redis: Redis;
let fake: FakeApp;
let endpoints = 0;

/** A target over the fake app; every target gets an endpoint name of its own (its own limiter and cooldown). */
function target(config: Record<string, unknown> = {}, endpoint: Record<string, unknown> = {}, runtime: { maxRequestBytes?: number; resolve?: Resolve; dispatcher?: Dispatcher } = {}) {
  const name = `app-${++endpoints}`;
  const cfg = httpTarget.parse({ type: 'http', endpoint: name, body: { question: '{{input.question}}' }, ...config });
  const ep = targetEndpointSchema.parse({
    url: fake.url,
    headers: { authorization: `Bearer ${SECRET}`, 'x-app-key': SECRET },
    timeout_ms: 1_000,
    max_attempts: 3,
    allow_private: true,
    ...endpoint,
  });
  return new HttpTarget(cfg, name, ep, { redis, prefix, ...runtime });
}

/** A claim port that counts (and may cap) the calls, as Postgres would. */
function claims(limit = Number.POSITIVE_INFINITY) {
  const c = {
    count: 0,
    claim: async () => {
      if (c.count >= limit) return null;
      return ++c.count;
    },
  };
  return c;
}

async function run(t: HttpTarget, item: EvalItem = ITEM, claim = claims()): Promise<{ out: GenerateOutcome; claimed: number }> {
  const ctx: GenerateContext = { signal: new AbortController().signal, priority: 0, claim: claim.claim };
  const before = fake.requests.length;
  const out = await t.generate(t.prepare(item), ctx);
  // Every request the application saw was claimed first.
  expect(fake.requests.length - before).toBeLessThanOrEqual(claim.count);
  return { out, claimed: claim.count };
}

const never = () => new AbortController().signal;

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  fake = await startFakeApp();
});
afterAll(async () => {
  await fake?.close();
  if (redis) {
    await deleteKeys(redis, `${prefix}:*`);
    redis.disconnect();
  }
});
beforeEach(() => fake.reset());

describe('http target: the request', () => {
  it('renders the body: a lone placeholder is the JSON value itself, other strings are interpolated, keys are kept', async () => {
    const t = target({
      body: {
        question: '{{input.question}}',
        whole: '{{ input }}',
        n1: '{{input.n.1}}',
        text: 'Q: {{input.question}} (expected {{expected_output}}, {{input.n}})',
        nested: [{ tag: '{{metadata.tag}}' }, 7, true, null],
        missing: '{{input.nope}}',
        missingInText: '[{{input.nope}}]',
        '{{input}}': 'key',
      },
    });
    const { out } = await run(t);
    expect(out).toMatchObject({ kind: 'sample', attempts: 1 });
    expect(fake.requests).toHaveLength(1);
    const [req] = fake.requests;
    expect(req!.json).toEqual({
      question: 'what is 2+2?',
      whole: { question: 'what is 2+2?', n: [1, 2] },
      n1: 2,
      text: 'Q: what is 2+2? (expected 4, [1,2])',
      nested: [{ tag: 'math' }, 7, true, null],
      missing: null,
      missingInText: '[]',
      '{{input}}': 'key',
    });
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe('/generate');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers.authorization).toBe(`Bearer ${SECRET}`);
  });

  it('a body that is one placeholder sends the whole value; PUT when the endpoint says so', async () => {
    const t = target({ body: '{{input}}', output_path: 'answer' }, { method: 'PUT' });
    expect((await run(t)).out).toMatchObject({ kind: 'sample', text: 'WHAT IS 2+2?' });
    expect(fake.requests[0]!.json).toEqual(ITEM.input);
    expect(fake.requests[0]!.method).toBe('PUT');
  });

  it('the cache material names the endpoint and the rendered body, never its URL or headers', () => {
    const t = target({ output_path: 'answer' });
    const req = t.prepare(ITEM);
    expect(req.cacheMaterial).toEqual({ endpoint: expect.stringMatching(/^app-\d+$/), body: { question: 'what is 2+2?' }, output_path: 'answer' });
    const text = JSON.stringify(req.cacheMaterial);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(String(fake.port));
  });

  it('a body larger than the bound is the item\'s error, found before it is sent (even through repeated whole values)', async () => {
    const big: EvalItem = { ...ITEM, input: { question: 'x'.repeat(2_000) } };
    const t = target({ body: { a: '{{input.question}}' } }, {}, { maxRequestBytes: 1_024 });
    expect(() => t.prepare(big)).toThrow(ItemRequestError);
    expect(() => t.prepare(big)).toThrow(/more than 1024 bytes/);
    const many = target({ body: Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [`k${i}`, '{{input}}'])) }, {}, { maxRequestBytes: 64 * 1024 });
    expect(() => many.prepare({ ...ITEM, input: { question: 'y'.repeat(1_000) } })).toThrow(ItemRequestError);
    const interpolated = target({ body: Array.from({ length: 1_000 }, () => 'Q: {{input.question}}') }, {}, { maxRequestBytes: 64 * 1024 });
    expect(() => interpolated.prepare({ ...ITEM, input: { question: 'z'.repeat(1_000) } })).toThrow(ItemRequestError);
    expect(fake.requests).toHaveLength(0);
    // Within the bound it goes.
    expect(t.prepare(ITEM).cacheMaterial).toMatchObject({ body: { a: 'what is 2+2?' } });
  });
});

describe('http target: the answer', () => {
  it('output_path: a string is the text; an object or a number is the value (and its JSON the text)', async () => {
    expect((await run(target({ output_path: 'answer' }))).out).toMatchObject({ kind: 'sample', text: 'WHAT IS 2+2?', finish_reason: null, usage: { prompt_tokens: 0, completion_tokens: 0 } });
    expect((await run(target({ output_path: 'answer' }))).out).not.toHaveProperty('value');
    const obj = (await run(target({ output_path: 'echo' }))).out;
    expect(obj).toMatchObject({ kind: 'sample', value: { question: 'what is 2+2?' }, text: JSON.stringify({ question: 'what is 2+2?' }) });
    const num = (await run(target({ body: { q: '{{input}}' }, output_path: 'echo.q.n.1' }))).out;
    expect(num).toMatchObject({ kind: 'sample', value: 2, text: '2' });
  });

  it('without output_path: a JSON answer is the value, a non-JSON answer the text', async () => {
    const json = (await run(target())).out;
    expect(json).toMatchObject({ kind: 'sample', value: { answer: 'WHAT IS 2+2?', echo: { question: 'what is 2+2?' } } });
    fake.reset({ answer: 'text' });
    const text = (await run(target())).out;
    expect(text).toMatchObject({ kind: 'sample', text: 'plain WHAT IS 2+2?' });
    expect(text).not.toHaveProperty('value');
  });

  it('an answer without the output_path is retried, then the item\'s error with the start of the raw answer', async () => {
    const { out, claimed } = await run(target({ output_path: 'nope' }, { max_attempts: 2 }));
    expect(out).toMatchObject({ kind: 'error', attempts: 2, error: expect.stringMatching(/nothing at "nope".*after 2 attempts/) });
    expect(out.kind === 'error' && out.raw_start).toMatch(/^\{"answer":"WHAT IS 2\+2\?"/);
    expect(fake.requests).toHaveLength(2);
    expect(claimed).toBe(2);
    fake.reset({ answer: 'garbage' });
    const garbage = (await run(target({ output_path: 'answer' }, { max_attempts: 1 }))).out;
    expect(garbage).toMatchObject({ kind: 'error', attempts: 1, raw_start: '{"answer": "cut of', error: expect.stringMatching(/not JSON/) });
  });

  it('prices each answered call', async () => {
    fake.reset({ fail5xxNext: 1 });
    expect((await run(target({}, { usd_per_call: 0.25 }))).out).toMatchObject({ kind: 'sample', attempts: 2, cost_usd: 0.25 });
    expect((await run(target())).out).toMatchObject({ kind: 'sample', cost_usd: null });
  });
});

describe('http target: the retry policy', () => {
  it('classifies one call: 429 with Retry-After (seconds or an HTTP date), 5xx, 401, 2xx', async () => {
    const t = target();
    const call = () => t.prepare(ITEM).call(never());
    fake.reset({ rate429Next: 1, retryAfterSeconds: 7 });
    expect(await call()).toEqual({ kind: 'rate_limited', retryAfterMs: 7_000 });
    fake.reset({ rate429Next: 1, retryAfterSeconds: 60, retryAfterDate: true });
    expect(await call()).toMatchObject({ kind: 'rate_limited', retryAfterMs: expect.any(Number) });
    fake.reset({ fail5xxNext: 1 });
    expect(await call()).toMatchObject({ kind: 'transient', message: expect.stringMatching(/^HTTP 500: .*exploded/) });
    fake.reset({ unauthorized: true });
    expect(await call()).toMatchObject({ kind: 'auth', status: 401 });
    fake.reset();
    expect(await call()).toMatchObject({ kind: 'answer', json: { value: { answer: 'WHAT IS 2+2?' } } });
  });

  it('429s wait (Retry-After) and then succeed, without using up an attempt', async () => {
    fake.reset({ rate429Next: 2, retryAfterSeconds: 1 });
    const { out, claimed } = await run(target({ output_path: 'answer' }, { max_attempts: 1 }));
    expect(out).toMatchObject({ kind: 'sample', text: 'WHAT IS 2+2?', attempts: 3 });
    expect(fake.requests.map((r) => r.status)).toEqual([429, 429, 200]);
    expect(claimed).toBe(3);
  });

  it('5xx is retried up to max_attempts, then the item\'s error; attempts is the requests the app saw', async () => {
    fake.reset({ fail5xxNext: 100 });
    const { out, claimed } = await run(target({}, { max_attempts: 3 }));
    expect(out).toMatchObject({ kind: 'error', error: expect.stringMatching(/HTTP 500.*after 3 attempts/) });
    expect(out.attempts).toBe(fake.requests.length);
    expect(fake.requests).toHaveLength(3);
    expect(claimed).toBe(3);
  });

  it('a hanging app is cut at timeout_ms, as a transient outcome, and the next attempt succeeds', async () => {
    fake.reset({ hangNext: 1 });
    const t = target({ output_path: 'answer' }, { timeout_ms: 300 });
    expect(await t.prepare(ITEM).call(never())).toEqual({ kind: 'transient', message: 'no answer within 300 ms' });
    await waitFor(async () => fake.inFlight === 0, { timeoutMs: 10_000, what: 'the hung request to be closed by the client' });
    fake.reset({ hangNext: 1 });
    const { out } = await run(t);
    expect(out).toMatchObject({ kind: 'sample', text: 'WHAT IS 2+2?', attempts: 2 });
    expect(fake.requests).toHaveLength(2);
    await waitFor(async () => fake.inFlight === 0, { timeoutMs: 10_000, what: 'no request left open' });
  });

  it('the deadline covers the body too: an answer that trickles is cut at timeout_ms', async () => {
    fake.reset({ answer: 'trickle' });
    const t = target({}, { timeout_ms: 300 });
    expect(await t.prepare(ITEM).call(never())).toEqual({ kind: 'transient', message: 'no answer within 300 ms' });
    await waitFor(async () => fake.inFlight === 0, { timeoutMs: 10_000, what: 'the trickling answer to be closed by the client' });
  });

  it('a canceled run stops the in-flight request and throws its reason', async () => {
    fake.reset({ hangNext: 1 });
    const t = target({}, { timeout_ms: 30_000 });
    const ac = new AbortController();
    const reason = new Error('run is canceled');
    const pending = t.generate(t.prepare(ITEM), { signal: ac.signal, priority: 0, claim: claims().claim });
    await waitFor(async () => fake.requests.length === 1, { timeoutMs: 10_000, what: 'the request to arrive' });
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await waitFor(async () => fake.inFlight === 0, { timeoutMs: 10_000, what: 'the request to be closed' });
  });

  it('401 fails the run with TargetAuthError, naming where to look and not the credentials', async () => {
    fake.reset({ unauthorized: true });
    const err = await run(target()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetAuthError);
    expect((err as Error).message).toMatch(/endpoint "app-\d+" refused the request with HTTP 401 \(check its headers in EVALGATE_TARGETS\)/);
    expect((err as Error).message).toContain('[redacted]');
    expect((err as Error).message).not.toContain(SECRET);
    expect(fake.requests).toHaveLength(1);
  });

  it('the claim port: null stops before any request; calls never exceed claims', async () => {
    const none = claims(0);
    const { out } = await run(target(), ITEM, none);
    expect(out).toMatchObject({ kind: 'error', error: expect.stringMatching(/attempts are used up/) });
    expect(fake.requests).toHaveLength(0);
    fake.reset({ fail5xxNext: 100 });
    const two = claims(2);
    const capped = await run(target({}, { max_attempts: 5 }), ITEM, two);
    expect(capped.out).toMatchObject({ kind: 'error', attempts: 2, error: expect.stringMatching(/attempts are used up/) });
    expect(fake.requests).toHaveLength(2);
  });
});

describe('http target: hostile answers and secrets', () => {
  it('a huge answer is a transient size error and is not buffered; the target keeps working', async () => {
    fake.reset({ answer: 'huge' });
    const t = target({}, { max_attempts: 2 });
    expect(await t.prepare(ITEM).call(never())).toMatchObject({ kind: 'transient', message: expect.stringMatching(new RegExp(`larger than ${MAX_RESPONSE_BYTES}`)) });
    fake.reset({ answer: 'huge' });
    const { out } = await run(t);
    expect(out).toMatchObject({ kind: 'error', attempts: 2, error: expect.stringMatching(/larger than/) });
    fake.reset();
    expect((await run(t)).out).toMatchObject({ kind: 'sample' });
  });

  it('a chunked answer that never declares its size is cut at the bound too, even over a pool without a cap of its own', async () => {
    fake.reset({ answer: 'huge_chunked' });
    const uncapped = new Agent();
    try {
      const t = target({}, { max_attempts: 1 }, { dispatcher: uncapped });
      expect(await t.prepare(ITEM).call(never())).toMatchObject({ kind: 'transient', message: `response larger than ${MAX_RESPONSE_BYTES} bytes` });
      await waitFor(async () => fake.inFlight === 0, { timeoutMs: 10_000, what: 'the answer to be dropped' });
    } finally {
      await uncapped.close();
    }
  });

  it('a redirect is not followed: the item\'s error at once', async () => {
    fake.reset({ answer: 'redirect' });
    const { out } = await run(target({}, { max_attempts: 3 }));
    expect(out).toMatchObject({ kind: 'error', attempts: 1, error: expect.stringMatching(/HTTP 302: a redirect, which is not followed/) });
    expect(fake.requests.map((r) => r.path)).toEqual(['/generate']);
  });

  it('header values never appear in an answer or a message, even when the app echoes them', async () => {
    fake.reset({ answer: 'echo_headers' });
    const echoed = (await run(target())).out;
    expect(echoed.kind).toBe('sample');
    expect(JSON.stringify(echoed)).not.toContain(SECRET);
    expect(JSON.stringify(echoed)).toContain('[redacted]');
    fake.reset({ answer: 'echo_headers' });
    const unparsable = (await run(target({ output_path: 'nope' }, { max_attempts: 1 }))).out;
    expect(unparsable.kind).toBe('error');
    expect(JSON.stringify(unparsable)).not.toContain(SECRET);
    // A refused connection: transient, and its message names neither the credentials nor the URL.
    const closed = await startFakeApp();
    const url = closed.url;
    await closed.close();
    const refused = await target({}, { url, max_attempts: 1 }).prepare(ITEM).call(never());
    expect(refused).toMatchObject({ kind: 'transient', message: expect.stringMatching(/^request failed: /) });
    expect(JSON.stringify(refused)).not.toContain(SECRET);
    expect(JSON.stringify(refused)).not.toContain(url.replace('http://', '').split('/')[0]);
  });

  it('another 4xx is the item\'s error at once, its message scrubbed', async () => {
    const { createServer } = await import('node:http');
    let seen = 0;
    const server = createServer((req, res) => {
      seen++;
      res.writeHead(422, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `unprocessable, you sent ${String(req.headers['x-app-key'])}` }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const { out } = await run(target({}, { url: `http://127.0.0.1:${port}/x`, max_attempts: 5 }));
      expect(out).toMatchObject({ kind: 'error', attempts: 1, error: expect.stringMatching(/rejected the request with HTTP 422: .*unprocessable/) });
      expect(JSON.stringify(out)).not.toContain(SECRET);
      expect(seen).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('http target: non-public endpoints', () => {
  it('refuses an endpoint at 127.0.0.1 without allow_private: the item\'s error, not retried, and no request', async () => {
    const { out, claimed } = await run(target({}, { allow_private: false, max_attempts: 3 }));
    expect(out).toMatchObject({ kind: 'error', error: expect.stringMatching(/resolves to a non-public address.*"allow_private": true/) });
    expect(claimed).toBe(1);
    expect(fake.requests).toHaveLength(0);
    expect(JSON.stringify(out)).not.toContain(String(fake.port));
  });

  it('refuses a name whose DNS answer is private, judged on the address the socket uses (localhost, a rebinding name)', async () => {
    const localhost = (await run(target({}, { url: fake.url.replace('127.0.0.1', 'localhost'), allow_private: false }))).out;
    expect(localhost).toMatchObject({ kind: 'error', error: expect.stringMatching(/non-public address/) });
    const asked: string[] = [];
    const resolve: Resolve = async (hostname) => {
      asked.push(hostname);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const rebinding = (await run(target({}, { url: fake.url.replace('127.0.0.1', 'app.rebind.test'), allow_private: false }, { resolve }))).out;
    expect(rebinding).toMatchObject({ kind: 'error', attempts: 1, error: expect.stringMatching(/non-public address/) });
    expect(asked).toContain('app.rebind.test');
    expect(fake.requests).toHaveLength(0);
  });

  it('with allow_private the same endpoint works', async () => {
    const { out } = await run(target({ output_path: 'answer' }, { allow_private: true }));
    expect(out).toMatchObject({ kind: 'sample', text: 'WHAT IS 2+2?' });
    expect(fake.requests).toHaveLength(1);
  });
});

describe('EVALGATE_TARGETS', () => {
  it('parses endpoints with their defaults, and a bad one is named without its value', () => {
    const env = loadEnv({ EVALGATE_TARGETS: JSON.stringify({ 'my-app': { url: 'https://app.example.com/generate', headers: { authorization: `Bearer ${SECRET}` } } }) });
    expect(env.EVALGATE_TARGETS['my-app']).toEqual({
      url: 'https://app.example.com/generate',
      method: 'POST',
      headers: { authorization: `Bearer ${SECRET}` },
      timeout_ms: 30_000,
      max_attempts: 3,
      concurrency: 16,
      rpm: 6_000,
      allow_private: false,
    });
    for (const bad of [
      { 'my-app': { url: `ftp://${SECRET}.example.com/`, headers: { authorization: SECRET } } },
      { 'my-app': { url: 'https://app.example.com/', headers: { Host: SECRET } } },
      { 'my-app': { url: 'https://app.example.com/', headers: { authorization: `${SECRET}\r\nx-injected: 1` } } },
      { 'bad name': { url: 'https://app.example.com/', headers: { authorization: SECRET } } },
      { 'my-app': { url: `https://user:${SECRET}@app.example.com/` } },
    ]) {
      const err = (() => {
        try {
          loadEnv({ EVALGATE_TARGETS: JSON.stringify(bad) });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(EnvError);
      expect((err as Error).message).toMatch(/EVALGATE_TARGETS/);
      expect((err as Error).message).not.toContain(SECRET);
    }
    expect(() => loadEnv({ EVALGATE_TARGETS: `{"my-app": ${SECRET}` })).toThrow(/EVALGATE_TARGETS \("…"\): must be a JSON object/);
  });
});
