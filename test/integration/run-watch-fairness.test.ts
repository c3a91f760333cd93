/**
 * Live progress cannot starve anyone: a thousand watchers of one run share
 * one poll, a tenant's watches are capped (429 with Retry-After beyond the
 * cap, SSE and tRPC), another tenant reads and watches while they are
 * connected, and the poll stops when the last watcher's socket closes.
 * Work is counted (reads of the run made for watchers), never timed.
 */
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvalgateClient } from '../../client/index.ts';
import type { EvalRunDto } from '../../domain/eval-runs/eval-run.schema.ts';
import { insertPendingRun } from '../../domain/eval-runs/eval-run.service.ts';
import { watchEvalRun, watchStats } from '../../domain/eval-runs/eval-run-watch.service.ts';
import { sql } from '../../domain/shared/sql.ts';
import { makeDataset, makeEval, makeTenant, items, type TenantFixture } from '../helpers/factories.ts';
import { api } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const CAP = 1_000;
const INTERVAL_MS = 200;

interface RawWatch {
  res: IncomingMessage;
  /** Everything received so far (a few events of ~1 KB each). */
  text(): string;
  close(): void;
}

/** One SSE watcher on its own socket (no agent: a thousand of them are a thousand connections). */
function openRaw(base: string, runId: string, key: string, onChunk?: (chunk: string) => void): Promise<RawWatch> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/v1/eval-runs/${runId}/events`, { agent: false, headers: { authorization: `Bearer ${key}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (onChunk) onChunk(chunk);
        else text += chunk;
      });
      res.on('error', () => undefined);
      resolve({ res, text: () => text, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

async function bodyOf(w: RawWatch): Promise<string> {
  if (!w.res.complete) await new Promise((resolve) => w.res.once('end', resolve));
  return w.text();
}

/** The first error (or data) of a watchEvalRun subscription. */
function firstOutcome(base: string, key: string, runId: string): Promise<{ data?: EvalRunDto; error?: unknown }> {
  return new Promise((resolve) => {
    const sub = createEvalgateClient({ url: base, apiKey: key }).watchEvalRun.subscribe(
      { id: runId },
      {
        onData: (run) => {
          sub.unsubscribe();
          resolve({ data: run });
        },
        onError: (error) => {
          sub.unsubscribe();
          resolve({ error });
        },
      },
    );
  });
}

describe('a thousand watchers of one run', () => {
  let s: Stack;
  let a: TenantFixture;
  let b: TenantFixture;
  let runA: string;
  let runB: string;
  beforeAll(async () => {
    // No workers: the runs stay pending, so nothing but this test changes them.
    s = await startStack({ workers: false, env: { MAX_WATCHERS_PER_TENANT: String(CAP), RUN_WATCH_INTERVAL_MS: String(INTERVAL_MS) } });
    a = await makeTenant(s.container, 'crowd');
    b = await makeTenant(s.container, 'bystander');
    const em = s.container.orm.em.fork();
    for (const t of [a, b]) {
      const ds = await makeDataset(s.container, t.id, items(3));
      const ev = await makeEval(s.container, t.id);
      const run = await insertPendingRun(em, t.id, ds.datasetId, ev.evalVersionId);
      if (t === a) runA = run.id;
      else runB = run.id;
    }
  });
  afterAll(async () => s?.close());

  it('share one poll, are capped at MAX_WATCHERS_PER_TENANT, leave another tenant served, and stop the poll when they leave', async () => {
    const before = watchStats(s.container).polls;
    const started = Date.now();
    const crowd: RawWatch[] = [];
    for (let i = 0; i < CAP; i += 100) {
      crowd.push(...(await Promise.all(Array.from({ length: 100 }, () => openRaw(s.baseUrl, runA, a.keys.viewer)))));
    }
    await waitFor(async () => crowd.every((w) => w.text().includes('event: progress')), { what: 'every watcher\'s first event', timeoutMs: 60_000 });
    expect(crowd.every((w) => w.res.statusCode === 200)).toBe(true);
    const connected = watchStats(s.container);
    const elapsedIntervals = Math.floor((Date.now() - started) / INTERVAL_MS);
    expect(connected.feeds).toBe(1);
    expect(connected.watchers[a.id]).toBe(CAP);
    console.log(`[watch] ${CAP} watchers connected: ${connected.polls - before} reads of the run over ${elapsedIntervals} intervals, ${connected.feeds} feed`);
    // One read per interval for all of them; a read per watcher would be at least CAP just to connect. Bounded by the
    // watchers, not by the clock: the intervals are logged above, for the reader, and asserted nowhere.
    expect(connected.polls - before, `reads while ${CAP} watchers connected`).toBeLessThan(CAP);

    // The cap: the next watcher of this tenant is refused, on SSE (429, Retry-After, {error}) and on tRPC.
    const refused = await openRaw(s.baseUrl, runA, a.keys.member);
    expect(refused.res.statusCode).toBe(429);
    expect(refused.res.headers['retry-after']).toBe('5');
    const refusedBody = JSON.parse(await bodyOf(refused)) as Record<string, unknown>;
    expect(Object.keys(refusedBody)).toEqual(['error']);
    expect(refusedBody.error).toMatch(/too many open watches .*at most 1000/);
    const refusedRpc = await firstOutcome(s.baseUrl, a.keys.viewer, runA);
    expect(refusedRpc.error).toBeInstanceOf(TRPCClientError);
    expect((refusedRpc.error as TRPCClientError<never>).data).toMatchObject({ code: 'TOO_MANY_REQUESTS', httpStatus: 429 });
    expect(watchStats(s.container).watchers[a.id]).toBe(CAP);

    // Another tenant, while the crowd is connected: reads and watches succeed.
    const got = await api<EvalRunDto>(s.baseUrl, 'GET', `/v1/eval-runs/${runB}`, b.keys.viewer);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: runB, status: 'pending' });
    const bWatch = await openRaw(s.baseUrl, runB, b.keys.viewer);
    expect(bWatch.res.statusCode).toBe(200);
    await waitFor(async () => bWatch.text().includes(`"id":"${runB}"`), { what: 'the other tenant\'s first event' });
    const bRpc = await firstOutcome(s.baseUrl, b.keys.viewer, runB);
    expect(bRpc.data).toMatchObject({ id: runB, status: 'pending' });
    bWatch.close();

    // A change reaches every watcher from the one shared read.
    const polled = watchStats(s.container).polls;
    const changedAt = Date.now();
    await sql(s.container.orm.em.fork(), `update eval_runs set status = 'running', started_at = now() where id = ?`, [runA]);
    await waitFor(async () => crowd.every((w) => w.text().includes('"status":"running"')), { what: 'the change at every watcher', timeoutMs: 60_000 });
    const changeIntervals = Math.floor((Date.now() - changedAt) / INTERVAL_MS);
    console.log(`[watch] change seen by all ${CAP}: ${watchStats(s.container).polls - polled} reads over ${changeIntervals} intervals`);
    // A read per watcher would be at least CAP before every one of them had seen the change.
    expect(watchStats(s.container).polls - polled, `reads until ${CAP} watchers saw the change`).toBeLessThan(CAP);

    // Every socket closed: the slots are free and the feed stops reading.
    for (const w of crowd) w.close();
    await waitFor(async () => watchStats(s.container).feeds === 0 && watchStats(s.container).watchers[a.id] === undefined, { what: 'the feed to stop' });
    const stopped = watchStats(s.container).polls;
    await sleep(INTERVAL_MS * 5);
    expect(watchStats(s.container).polls).toBe(stopped);

    // And the tenant may watch again.
    const again = await firstOutcome(s.baseUrl, a.keys.viewer, runA);
    expect(again.data).toMatchObject({ id: runA, status: 'running' });
  });
});

describe('a slow watcher', () => {
  let s: Stack;
  let t: TenantFixture;
  let runId: string;
  beforeAll(async () => {
    s = await startStack({ workers: false, http: false, env: { RUN_WATCH_INTERVAL_MS: '50' } });
    t = await makeTenant(s.container, 'slow');
    const ds = await makeDataset(s.container, t.id, items(10));
    const ev = await makeEval(s.container, t.id);
    runId = (await insertPendingRun(s.container.orm.em.fork(), t.id, ds.datasetId, ev.evalVersionId)).id;
  });
  afterAll(async () => s?.close());

  it('holds back nobody and buffers nothing: it gets the latest snapshot, skipping the ones in between', async () => {
    const fastCtl = new AbortController();
    const slowCtl = new AbortController();
    const fast = await watchEvalRun(s.container, t.id, runId, fastCtl.signal);
    const slow = await watchEvalRun(s.container, t.id, runId, slowCtl.signal);
    expect((await slow.next()).value).toMatchObject({ completed_count: 0 });
    expect((await fast.next()).value).toMatchObject({ completed_count: 0 });
    expect(watchStats(s.container).feeds).toBe(1);
    const em = s.container.orm.em.fork();
    await sql(em, `update eval_runs set status = 'running' where id = ?`, [runId]);
    expect((await fast.next()).value).toMatchObject({ status: 'running', completed_count: 0 });
    // Five changes the slow watcher does not read; the fast one sees each of them.
    for (let n = 1; n <= 5; n++) {
      await sql(em, `update eval_runs set completed_count = ?, passed_count = ? where id = ?`, [n, n, runId]);
      expect((await fast.next()).value).toMatchObject({ completed_count: n });
    }
    // One step later the slow one is at the latest state: nothing was queued for it.
    expect((await slow.next()).value).toMatchObject({ status: 'running', completed_count: 5 });
    // The run ends: both get it last, then their streams end and the feed is gone.
    await sql(em, `update eval_runs set status = 'completed', completed_count = 10, passed_count = 10, completed_at = now() where id = ?`, [runId]);
    expect((await fast.next()).value).toMatchObject({ status: 'completed' });
    expect((await slow.next()).value).toMatchObject({ status: 'completed' });
    expect((await fast.next()).done).toBe(true);
    expect((await slow.next()).done).toBe(true);
    expect(watchStats(s.container).feeds).toBe(0);
    fastCtl.abort();
    slowCtl.abort();
  });

  it('another tenant\'s run is a NOT_FOUND before anything is streamed, and costs one shared read', async () => {
    const other = await makeTenant(s.container, 'other');
    const before = watchStats(s.container).polls;
    const attempts = await Promise.allSettled(Array.from({ length: 20 }, () => watchEvalRun(s.container, other.id, runId, new AbortController().signal)));
    expect(attempts.every((r) => r.status === 'rejected' && /not found/.test(String((r.reason as Error).message)))).toBe(true);
    expect(watchStats(s.container).polls - before).toBe(1);
    expect(watchStats(s.container).feeds).toBe(0);
  });
});

describe('a client that stops reading its SSE stream', () => {
  let s: Stack;
  let t: TenantFixture;
  let runId: string;
  beforeAll(async () => {
    s = await startStack({ workers: false, env: { RUN_WATCH_INTERVAL_MS: '50' } });
    t = await makeTenant(s.container, 'stalled');
    const ds = await makeDataset(s.container, t.id, items(50));
    const ev = await makeEval(s.container, t.id);
    runId = (await insertPendingRun(s.container.orm.em.fork(), t.id, ds.datasetId, ev.evalVersionId)).id;
  });
  afterAll(async () => s?.close());

  it('is sent the latest snapshot once it reads again, not every one it missed, and holds back no other watcher', async () => {
    const CHANGES = 30;
    const BIG = 'x'.repeat(1_000_000); // ~1 MB events: 30 of them are far more than the kernel's socket buffers hold
    /** Counts events and remembers the latest completed_count, without keeping the stream. */
    const tally = () => {
      let tail = '';
      const state = { events: 0, latest: -1 };
      return {
        state,
        feed(chunk: string) {
          const text = tail + chunk;
          state.events += (text.match(/event: progress/g) ?? []).length - (tail.match(/event: progress/g) ?? []).length;
          for (const m of text.matchAll(/"completed_count":(\d+)/g)) state.latest = Number(m[1]);
          tail = text.slice(-40);
        },
      };
    };

    // The stalled client: sends its request and never reads (a paused socket takes at most its high-water mark).
    const stalled = net.connect(Number(new URL(s.baseUrl).port), '127.0.0.1');
    stalled.pause();
    stalled.write(`GET /v1/eval-runs/${runId}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.keys.viewer}\r\n\r\n`);
    await waitFor(async () => watchStats(s.container).watchers[t.id] === 1, { what: 'the stalled watch' });

    const fast = tally();
    const fastWatch = await openRaw(s.baseUrl, runId, t.keys.member, (chunk) => fast.feed(chunk));
    await waitFor(async () => fast.state.latest === 0, { what: 'the reader\'s first event' });

    const em = s.container.orm.em.fork();
    await sql(em, `update eval_runs set status = 'running' where id = ?`, [runId]);
    for (let n = 1; n <= CHANGES; n++) {
      await sql(em, `update eval_runs set completed_count = ?, error_message = ? where id = ?`, [n, `${BIG}${n}`, runId]);
      // The reader gets every change although the stalled one is not reading.
      await waitFor(async () => fast.state.latest === n, { what: `change ${n} at the reader`, intervalMs: 10 });
    }
    expect(fast.state.events).toBeGreaterThanOrEqual(CHANGES);
    expect(watchStats(s.container).feeds).toBe(1);

    // It reads again: whatever was in flight, then the latest state, and far fewer events than changes.
    const slow = tally();
    stalled.setEncoding('utf8');
    stalled.on('data', (chunk: string) => slow.feed(chunk));
    stalled.resume();
    await waitFor(async () => slow.state.latest === CHANGES, { what: 'the latest state at the stalled client', timeoutMs: 60_000 });
    console.log(`[watch] stalled reader: ${slow.state.events} events for ${CHANGES} changes of ~1 MB (the reader: ${fast.state.events})`);
    expect(slow.state.events).toBeLessThan(CHANGES / 2);
    stalled.destroy();
    fastWatch.close();
    await waitFor(async () => watchStats(s.container).feeds === 0, { what: 'the feed to stop' });
  });
});
