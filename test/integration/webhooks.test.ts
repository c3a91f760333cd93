/**
 * Completion webhooks against a real local receiver, with in-process workers
 * on real Redis and Postgres: registration (owners only, tenant-scoped),
 * signed deliveries, retries recorded attempt by attempt, one delivery per
 * ending however often it is triggered, the reconciler's catch-up after a
 * crash between commit and enqueue, and job payloads without secrets.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvaluatorCache } from '../../domain/evaluators/evaluator-cache.ts';
import { reconcile } from '../../jobs/eval-runs/reconcile.job.ts';
import { jobIds } from '../../jobs/queues.ts';
import { purgeOldDeliveries, uuidv7Floor } from '../../domain/webhooks/delivery-retention.ts';
import { notifyRunFinished, sweepUnnotifiedRuns } from '../../domain/webhooks/run-notifications.ts';
import { postWebhook } from '../../domain/webhooks/webhook-http.ts';
import { PrivateTargetError } from '../../domain/webhooks/webhook-target.ts';
import { verifyWebhookSignature } from '../../domain/webhooks/webhook-signature.ts';
import type { EvalRunDto } from '../../domain/eval-runs/eval-run.schema.ts';
import { insertPendingRun } from '../../domain/eval-runs/eval-run.service.ts';
import type { CreatedWebhookDto, WebhookDto } from '../../domain/webhooks/webhook.schema.ts';
import { sql } from '../../domain/shared/sql.ts';
import { items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';

interface Delivery {
  attempt: number;
  status_code: number | null;
  error: string | null;
  event_type: string;
}

let s: Stack;
let receiver: Receiver;
/** Per path: how to answer the n-th request. */
const script: Record<string, (n: number) => { status: number; headers?: Record<string, string> } | 'hang'> = {
  '/flaky': (n) => (n < 2 ? { status: 500 } : { status: 200 }),
  '/slow-once': (n) => (n === 0 ? 'hang' : { status: 204 }),
  '/down': () => ({ status: 503, headers: { 'retry-after': '3600' } }),
};

beforeAll(async () => {
  s = await startStack({
    workers: true,
    // The receiver is on 127.0.0.1: private targets are allowed here and refused in 'private targets' below.
    env: { WEBHOOK_ATTEMPTS: '4', WEBHOOK_BACKOFF_MS: '50', WEBHOOK_TIMEOUT_MS: '1000', LOCK_DURATION_MS: '5000', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' },
  });
  receiver = await startReceiver((path, n) => script[path]?.(n) ?? { status: 200 });
});
afterAll(async () => {
  await receiver?.close();
  await s?.close();
});

async function createHook(t: TenantFixture, path: string): Promise<CreatedWebhookDto> {
  const r = await api<CreatedWebhookDto>(s.baseUrl, 'POST', '/v1/webhooks', t.keys.owner, { url: `${receiver.url}${path}` });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

async function deliveries(webhookId: string, runId?: string): Promise<Delivery[]> {
  return sql<Delivery>(
    s.container.orm.em.fork(),
    `select attempt, status_code, error, event_type from webhook_deliveries
      where webhook_id = ? ${runId ? 'and run_id = ?' : ''} order by delivered_at, attempt`,
    runId ? [webhookId, runId] : [webhookId],
  );
}

async function runToEnd(t: TenantFixture, n = 10, evaluator?: unknown): Promise<EvalRunDto> {
  const ds = await makeDataset(s.container, t.id, items(n, (i) => i % 2 === 0));
  const ev = await makeEval(s.container, t.id, evaluator);
  const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
  return waitForRunEnd(s.baseUrl, t.keys.member, run.id);
}

describe('registration', () => {
  let a: TenantFixture;
  let b: TenantFixture;
  beforeAll(async () => {
    a = await makeTenant(s.container, 'a');
    b = await makeTenant(s.container, 'b');
  });

  it('owners create (201, the secret once), list (no secret) and delete (204)', async () => {
    const created = await createHook(a, '/reg');
    expect(created).toEqual({ id: expect.any(String), url: `${receiver.url}/reg`, created_at: expect.stringMatching(/^\d{4}-/), secret: expect.stringMatching(/^whsec_[A-Za-z0-9_-]{43}$/) });
    const list = await api<{ data: WebhookDto[]; next_cursor: string | null }>(s.baseUrl, 'GET', '/v1/webhooks', a.keys.owner);
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ data: [{ id: created.id, url: created.url, created_at: created.created_at }], next_cursor: null });
    expect(JSON.stringify(list.body)).not.toContain(created.secret);
    const del = await api(s.baseUrl, 'DELETE', `/v1/webhooks/${created.id}`, a.keys.owner);
    expect(del.status).toBe(204);
    expect((await api<{ data: unknown[] }>(s.baseUrl, 'GET', '/v1/webhooks', a.keys.owner)).body.data).toEqual([]);
    const again = await api(s.baseUrl, 'DELETE', `/v1/webhooks/${created.id}`, a.keys.owner);
    expect(again).toEqual({ status: 404, body: { error: `webhook ${created.id} not found` } });
  });

  it('members and viewers get 403 on every webhook procedure', async () => {
    const hook = await createHook(a, '/reg');
    for (const key of [a.keys.member, a.keys.viewer]) {
      const create = await api(s.baseUrl, 'POST', '/v1/webhooks', key, { url: `${receiver.url}/x` });
      expect(create.status).toBe(403);
      expect(create.body).toEqual({ error: expect.stringContaining('allowed: owner') });
      expect((await api(s.baseUrl, 'GET', '/v1/webhooks', key)).status).toBe(403);
      expect((await api(s.baseUrl, 'DELETE', `/v1/webhooks/${hook.id}`, key)).status).toBe(403);
    }
    expect((await api(s.baseUrl, 'GET', '/v1/webhooks', 'tl_nope')).status).toBe(401);
  });

  it('another tenant\'s webhook is a 404 and is not listed', async () => {
    const hook = await createHook(a, '/reg');
    expect(await api(s.baseUrl, 'DELETE', `/v1/webhooks/${hook.id}`, b.keys.owner)).toEqual({ status: 404, body: { error: `webhook ${hook.id} not found` } });
    expect((await api<{ data: unknown[] }>(s.baseUrl, 'GET', '/v1/webhooks', b.keys.owner)).body.data).toEqual([]);
    expect((await api(s.baseUrl, 'GET', '/v1/webhooks', a.keys.owner)).body).toMatchObject({ data: expect.arrayContaining([expect.objectContaining({ id: hook.id })]) });
  });

  it('accepts only absolute http(s) URLs, with a 400 naming the field', async () => {
    for (const url of ['ftp://example.com/hook', 'not a url', 'javascript:alert(1)', '/relative', `http://x/${'a'.repeat(2100)}`]) {
      const r = await api<{ error: string }>(s.baseUrl, 'POST', '/v1/webhooks', a.keys.owner, { url });
      expect(r.status, url.slice(0, 40)).toBe(400);
      expect(r.body.error).toMatch(/^invalid input: url: /);
    }
    expect((await api(s.baseUrl, 'POST', '/v1/webhooks', a.keys.owner, {})).status).toBe(400);
    expect((await api(s.baseUrl, 'DELETE', '/v1/webhooks/nope', a.keys.owner)).status).toBe(400);
  });

  it('caps webhooks per tenant with a 409', async () => {
    const t = await makeTenant(s.container, 'many');
    for (let i = 0; i < 20; i++) await createHook(t, `/cap-${i}`);
    const r = await api(s.baseUrl, 'POST', '/v1/webhooks', t.keys.owner, { url: `${receiver.url}/cap-x` });
    expect(r).toEqual({ status: 409, body: { error: expect.stringContaining('at most 20 webhooks') } });
  });
});

describe('delivery', () => {
  it('POSTs a signed eval_run.completed with the run, once, and records the attempt', async () => {
    const t = await makeTenant(s.container, 'signed');
    const hook = await createHook(t, '/signed');
    const run = await runToEnd(t);
    const [got] = await receiver.waitFor('/signed', 1);
    const body = JSON.parse(got?.body ?? '') as { type: string; run: EvalRunDto };
    expect(body).toEqual({ type: 'eval_run.completed', run });
    expect(body.run).toMatchObject({ status: 'completed', completed_count: 10, passed_count: 5 });
    expect(got?.headers['content-type']).toBe('application/json');
    expect(got?.headers['evalgate-event']).toBe('eval_run.completed');

    // Verify as a receiver would, independently of our helper, and with the helper.
    const header = String(got?.headers['evalgate-signature']);
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
    expect(m, header).not.toBeNull();
    const expected = createHmac('sha256', hook.secret).update(`${m?.[1]}.${got?.body}`).digest('hex');
    expect(m?.[2]).toBe(expected);
    expect(verifyWebhookSignature(hook.secret, got?.body ?? '', header)).toBe(true);
    expect(verifyWebhookSignature('whsec_wrong', got?.body ?? '', header)).toBe(false);
    expect(verifyWebhookSignature(hook.secret, `${got?.body} `, header)).toBe(false);

    await waitFor(async () => (await deliveries(hook.id, run.id)).length === 1, { what: 'the delivery row' });
    expect(await deliveries(hook.id, run.id)).toEqual([{ attempt: 1, status_code: 200, error: null, event_type: 'eval_run.completed' }]);

    // A duplicate trigger, even one that finds notified_at null again, delivers nothing more.
    expect(await notifyRunFinished(s.container, run.id)).toBe(0);
    await sql(s.container.orm.em.fork(), 'update eval_runs set notified_at = null where id = ?', [run.id]);
    expect(await sweepUnnotifiedRuns(s.container)).toMatchObject({ enqueued: 1 });
    const [ending] = await sql<{ ms: string }>(s.container.orm.em.fork(), 'select floor(extract(epoch from completed_at) * 1000)::bigint as ms from eval_runs where id = ?', [run.id]);
    const jobId = jobIds.webhookDelivery(hook.id, run.id, Number(ending?.ms));
    await waitFor(async () => (await s.container.queues.webhookDelivery.getJobState(jobId)) === 'unknown', { what: 'the duplicate job to finish' });
    expect(receiver.at('/signed')).toHaveLength(1);
    expect(await deliveries(hook.id, run.id)).toHaveLength(1);
  });

  it('retries a receiver that answers 500 twice: the third attempt lands, all three recorded', async () => {
    const t = await makeTenant(s.container, 'flaky');
    const hook = await createHook(t, '/flaky');
    const run = await runToEnd(t);
    const got = await receiver.waitFor('/flaky', 3);
    await waitFor(async () => (await deliveries(hook.id, run.id)).length === 3, { what: 'three delivery rows' });
    expect(await deliveries(hook.id, run.id)).toEqual([
      { attempt: 1, status_code: 500, error: 'receiver answered 500', event_type: 'eval_run.completed' },
      { attempt: 2, status_code: 500, error: 'receiver answered 500', event_type: 'eval_run.completed' },
      { attempt: 3, status_code: 200, error: null, event_type: 'eval_run.completed' },
    ]);
    // The same event each time, signed afresh.
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    expect(new Set(got.map((r) => r.headers['evalgate-event-id'])).size).toBe(1);
    for (const r of got) expect(verifyWebhookSignature(hook.secret, r.body, String(r.headers['evalgate-signature']))).toBe(true);
  });

  it('records a receiver that does not answer in time, and retries it', async () => {
    const t = await makeTenant(s.container, 'slow');
    const hook = await createHook(t, '/slow-once');
    const run = await runToEnd(t);
    await receiver.waitFor('/slow-once', 2);
    await waitFor(async () => (await deliveries(hook.id, run.id)).length === 2, { what: 'two delivery rows' });
    expect(await deliveries(hook.id, run.id)).toEqual([
      { attempt: 1, status_code: null, error: 'no answer within 1000 ms', event_type: 'eval_run.completed' },
      { attempt: 2, status_code: 204, error: null, event_type: 'eval_run.completed' },
    ]);
  });

  it('sends eval_run.failed for a canceled run, and nothing to another tenant\'s webhooks', async () => {
    const t = await makeTenant(s.container, 'cancel');
    const other = await makeTenant(s.container, 'other');
    const hook = await createHook(t, '/failed');
    const otherHook = await createHook(other, '/other');
    const ds = await makeDataset(s.container, t.id, items(5));
    const ev = await makeEval(s.container, t.id);
    // Inserted without enqueueing, so no worker can finish it before the cancel.
    const pending = await insertPendingRun(s.container.orm.em.fork(), t.id, ds.datasetId, ev.evalVersionId);
    const canceled = await api<EvalRunDto>(s.baseUrl, 'POST', `/v1/eval-runs/${pending.id}/cancel`, t.keys.member);
    expect(canceled.status).toBe(202);
    const [got] = await receiver.waitFor('/failed', 1);
    expect(JSON.parse(got?.body ?? '')).toEqual({ type: 'eval_run.failed', run: canceled.body });
    expect(canceled.body).toMatchObject({ status: 'failed', error_message: 'canceled' });
    await waitFor(async () => (await deliveries(hook.id)).length === 1, { what: 'the delivery row' });
    const [notified] = await sql<{ notified: boolean }>(s.container.orm.em.fork(), 'select notified_at is not null as notified from eval_runs where id = ?', [pending.id]);
    expect(notified?.notified).toBe(true);
    expect(await deliveries(otherHook.id)).toEqual([]);
    expect(receiver.at('/other')).toEqual([]);
  });

  it('delivers each ending of a retried run: the retry ends the run again with a new completed_at', async () => {
    const t = await makeTenant(s.container, 'retry');
    const hook = await createHook(t, '/retried');
    // numeric_diff errors on a non-numeric output, so the run has error items to retry.
    const data = Array.from({ length: 6 }, (_, i) => ({ input: i, expected_output: 1, output: i % 3 === 0 ? 'NaN!' : 1 }));
    const ds = await makeDataset(s.container, t.id, data);
    const ev = await makeEval(s.container, t.id, { type: 'numeric_diff', tolerance: 0 });
    const first = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId)).id);
    expect(first).toMatchObject({ status: 'completed', error_count: 2 });
    await receiver.waitFor('/retried', 1);
    const retried = await api(s.baseUrl, 'POST', `/v1/eval-runs/${first.id}/retry`, t.keys.member);
    expect(retried.status).toBe(202);
    const got = await receiver.waitFor('/retried', 2);
    const runs = got.map((r) => (JSON.parse(r.body) as { run: EvalRunDto }).run);
    expect(runs.map((r) => r.status)).toEqual(['completed', 'completed']);
    expect(runs[0]?.completed_at).toBe(first.completed_at);
    expect(runs[1]?.completed_at).not.toBe(first.completed_at);
    expect(new Set(got.map((r) => r.headers['evalgate-event-id'])).size).toBe(2);
    await waitFor(async () => (await deliveries(hook.id, first.id)).length === 2, { what: 'two delivery rows' });
  });

  it('the reconciler delivers the ending of a run whose process died between its commit and the enqueue', async () => {
    const t = await makeTenant(s.container, 'crash');
    const hook = await createHook(t, '/crash');
    const ds = await makeDataset(s.container, t.id, []);
    const ev = await makeEval(s.container, t.id);
    const em = s.container.orm.em.fork();
    const pending = await insertPendingRun(em, t.id, ds.datasetId, ev.evalVersionId);
    // What run-start commits for an empty run, without the onRunFinished that a crash would have skipped.
    await sql(em, `update eval_runs set status = 'completed', started_at = now(), completed_at = now(), updated_at = now() where id = ?`, [pending.id]);
    await reconcile({ container: s.container, log: s.container.log, evaluators: new EvaluatorCache(s.container) });
    const [got] = await receiver.waitFor('/crash', 1);
    expect(JSON.parse(got?.body ?? '')).toMatchObject({ type: 'eval_run.completed', run: { id: pending.id, status: 'completed', item_count: 0 } });
    await waitFor(async () => (await deliveries(hook.id)).length === 1, { what: 'the delivery row' });
  });

  it('keeps ids only in job payloads: no secret and no URL in Redis', async () => {
    const t = await makeTenant(s.container, 'payload');
    // Answers 503 with Retry-After: 3600, so the delivery waits (delayed) in Redis where we can look at it.
    const hook = await createHook(t, '/down');
    const run = await runToEnd(t, 3);
    await receiver.waitFor('/down', 1);
    const [ending] = await sql<{ ms: string }>(s.container.orm.em.fork(), 'select floor(extract(epoch from completed_at) * 1000)::bigint as ms from eval_runs where id = ?', [run.id]);
    const jobId = jobIds.webhookDelivery(hook.id, run.id, Number(ending?.ms));
    await waitFor(async () => (await s.container.queues.webhookDelivery.getJobState(jobId)) === 'delayed', { what: 'the delivery to wait for its Retry-After' });
    const job = await s.container.queues.webhookDelivery.getJob(jobId);
    expect(job?.data).toEqual({ webhook_id: hook.id, run_id: run.id, ending: Number(ending?.ms) });

    const raw = await s.redis.hgetall(`${s.env.EVALGATE_QUEUE_PREFIX}:webhook-delivery:${jobId}`);
    expect(JSON.parse(raw.data ?? '{}')).toEqual({ webhook_id: hook.id, run_id: run.id, ending: Number(ending?.ms) });
    // Every key of the queue, every field: the secret and the receiver's address appear nowhere.
    let cursor = '0';
    let scanned = 0;
    do {
      const [next, keys] = await s.redis.scan(cursor, 'MATCH', `${s.env.EVALGATE_QUEUE_PREFIX}:webhook-delivery:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        if ((await s.redis.type(key)) !== 'hash') continue;
        const text = JSON.stringify(await s.redis.hgetall(key));
        scanned++;
        expect(text).not.toContain(hook.secret);
        expect(text).not.toContain(receiver.url.replace('http://', ''));
      }
    } while (cursor !== '0');
    expect(scanned).toBeGreaterThan(0);
    expect(await deliveries(hook.id, run.id)).toEqual([{ attempt: 1, status_code: 503, error: 'receiver answered 503', event_type: 'eval_run.completed' }]);
  });
});

describe('private targets (WEBHOOK_ALLOW_PRIVATE_TARGETS unset)', () => {
  let strict: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    strict = await startStack();
    t = await makeTenant(strict.container, 'strict');
  });
  afterAll(async () => {
    await strict?.close();
  });

  it('refuses to register loopback, private, link-local and localhost URLs with a 400 naming the field', async () => {
    for (const url of ['http://127.0.0.1:8080/x', 'http://localhost/x', 'http://api.localhost/x', 'http://[::1]/x', 'http://10.1.2.3/x', 'http://192.168.0.9/x', 'http://169.254.169.254/latest/meta-data', 'http://[::ffff:127.0.0.1]/x', 'http://0.0.0.0/x', 'http://100.64.0.1/x']) {
      const r = await api<{ error: string }>(strict.baseUrl, 'POST', '/v1/webhooks', t.keys.owner, { url });
      expect(r.status, url).toBe(400);
      expect(r.body.error, url).toMatch(/^invalid input: url: .*public addresses$/);
    }
    const ok = await api<CreatedWebhookDto>(strict.baseUrl, 'POST', '/v1/webhooks', t.keys.owner, { url: 'https://hooks.example.com/evalgate' });
    expect(ok.status).toBe(201);
  });

  it('refuses at delivery a name that resolves to a private address (checked on the address the socket uses)', async () => {
    const port = new URL(receiver.url).port;
    const before = receiver.requests.length;
    const strictPost = (url: string) => postWebhook(url, { 'content-type': 'application/json' }, '{}', { timeoutMs: 1_000, allowPrivate: false });
    // A name is judged by its DNS answer (localhost: 127.0.0.1 / ::1) inside the socket's lookup, so a name that
    // passed registration and later resolves to a private address (DNS rebinding) is refused too.
    await expect(strictPost(`http://localhost:${port}/strict`)).rejects.toThrow(/localhost resolves to .*, not a public address/);
    await expect(strictPost(`http://127.0.0.1:${port}/strict`)).rejects.toBeInstanceOf(PrivateTargetError);
    expect(receiver.requests.length).toBe(before);
    // the same receiver, allowed: the request arrives
    const answer = await postWebhook(`http://localhost:${port}/strict`, { 'content-type': 'application/json' }, '{}', { timeoutMs: 1_000, allowPrivate: true });
    expect(answer.status).toBe(200);
    expect(receiver.at('/strict')).toHaveLength(1);
  });
});

describe('retention', () => {
  it('deletes delivery attempts older than the retention and keeps the recent ones', async () => {
    const t = await makeTenant(s.container, 'retention');
    const hook = await createHook(t, '/kept');
    const run = await runToEnd(t, 2);
    await waitFor(async () => (await deliveries(hook.id, run.id)).length === 1, { what: 'the delivery' });
    const em = s.container.orm.em.fork();
    // Two copies of that attempt made 40 and 31 days ago (ids are UUIDv7: the id carries the time).
    const day = 86_400_000;
    for (const ageDays of [40, 31]) {
      await sql(
        em,
        `insert into webhook_deliveries (id, tenant_id, webhook_id, run_id, event_type, run_ended_at, attempt, status_code, error, duration_ms, delivered_at)
         select ?, tenant_id, webhook_id, run_id, event_type, run_ended_at, attempt + 1, status_code, error, duration_ms, now() - make_interval(days => ?)
           from webhook_deliveries where webhook_id = ? and attempt = 1`,
        [uuidv7Floor(Date.now() - ageDays * day).replace(/0{12}$/, '000000000001'), ageDays, hook.id],
      );
    }
    expect(await deliveries(hook.id, run.id)).toHaveLength(3);
    expect(await purgeOldDeliveries(em, 30)).toBeGreaterThanOrEqual(2);
    expect(await deliveries(hook.id, run.id)).toEqual([{ attempt: 1, status_code: 200, error: null, event_type: 'eval_run.completed' }]);
    // and the reconciler runs it
    await sql(
      em,
      `insert into webhook_deliveries (id, tenant_id, webhook_id, run_id, event_type, run_ended_at, attempt, status_code, error, duration_ms, delivered_at)
       select ?, tenant_id, webhook_id, run_id, event_type, run_ended_at, 9, status_code, error, duration_ms, now() from webhook_deliveries where webhook_id = ? and attempt = 1`,
      [uuidv7Floor(Date.now() - 60 * day).replace(/0{12}$/, '000000000002'), hook.id],
    );
    expect(await deliveries(hook.id, run.id)).toHaveLength(2);
    await reconcile({ container: s.container, log: s.container.log, evaluators: new EvaluatorCache(s.container) });
    expect(await deliveries(hook.id, run.id)).toHaveLength(1);
  });
});

