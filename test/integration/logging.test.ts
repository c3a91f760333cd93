/**
 * Logs at debug, captured line by line from the logger the server really
 * uses (createLogger): no credential (API key, its hash, bearer token,
 * provider key, board password, metrics token) in any line, whatever
 * carried it, while request, tenant, run and job ids are there.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvalgateClient } from '../../client/index.ts';
import { generateApiKey, hashApiKey } from '../../domain/tenants/api-keys.ts';
import { loadEnv } from '../../server/env.ts';
import { configuredSecrets, createLogger } from '../../server/logger.ts';
import { makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const PROVIDER_KEY = `pk-live-${randomBytes(12).toString('hex')}`;
const BOARD_PASSWORD = `board-${randomBytes(8).toString('hex')}`;
const METRICS_TOKEN = `metrics-${randomBytes(8).toString('hex')}`;
const ENV = {
  LOG_LEVEL: 'debug',
  EVALGATE_PROVIDERS: JSON.stringify({ judge: { base_url: 'http://127.0.0.1:9/v1', api_key: PROVIDER_KEY } }),
  EVALGATE_BOARD_USER: 'ops',
  EVALGATE_BOARD_PASSWORD: BOARD_PASSWORD,
  EVALGATE_METRICS_TOKEN: METRICS_TOKEN,
};

describe('logs', () => {
  const lines: string[] = [];
  let s: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    // As server/main.ts builds it, writing where this test can read.
    const log = createLogger('debug', { write: (line: string) => void lines.push(line) }, configuredSecrets(loadEnv(ENV)));
    s = await startStack({ workers: true, env: ENV, log });
    t = await makeTenant(s.container);
  });
  afterAll(async () => s?.close());

  it('carry ids but never a credential, on success and on failure', async () => {
    const ds = await makeDataset(s.container, t.id);
    const ev = await makeEval(s.container, t.id);
    const unknownKey = generateApiKey();
    const malformedKey = `tl_${'x'.repeat(25)}`;

    // Success over REST, with a request id of our own.
    const scheduled = await fetch(`${s.baseUrl}/v1/datasets/${ds.datasetId}/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.keys.member}`, 'content-type': 'application/json', 'x-request-id': 'req-logging-1' },
      body: JSON.stringify({ eval_version_id: ev.evalVersionId }),
    });
    expect(scheduled.status).toBe(202);
    const run = (await scheduled.json()) as { id: string };
    await waitForRunEnd(s.baseUrl, t.keys.viewer, run.id);
    // Success over tRPC.
    await createEvalgateClient({ url: s.baseUrl, apiKey: t.keys.owner }).getEvalRun.query({ id: run.id });
    // Failures: unknown key, malformed key, a key in the URL, a role that may not write, bad board and metrics credentials.
    expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}`, unknownKey)).status).toBe(401);
    expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}`, malformedKey)).status).toBe(401);
    expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}?api_key=${t.keys.owner}`, unknownKey)).status).toBe(401);
    expect((await api(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, t.keys.viewer, { eval_version_id: ev.evalVersionId })).status).toBe(403);
    await expect(createEvalgateClient({ url: s.baseUrl, apiKey: unknownKey }).getEvalRun.query({ id: run.id })).rejects.toThrow(/unknown or revoked/);
    const basic = `Basic ${Buffer.from(`ops:${BOARD_PASSWORD}x`).toString('base64')}`;
    expect((await fetch(`${s.baseUrl}/admin/queues`, { headers: { authorization: basic } })).status).toBe(401);
    expect((await fetch(`${s.baseUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } })).status).toBe(401);
    // Our own code, should it ever log a credential in a message, a field or an error.
    s.container.log.warn({ detail: { header: `Bearer ${t.keys.owner}`, provider: PROVIDER_KEY }, err: new Error(`bad key ${unknownKey}`) }, `saw ${t.keys.member}`);
    await schedule(s, t); // a second run, so the worker logs another job

    const jsonLines = await waitFor(async () => {
      const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      return parsed.filter((l) => l.msg === 'run completed').length >= 2 ? parsed : null;
    }, { what: 'both runs to be logged as completed' });

    const all = lines.join('');
    const secrets = [...Object.values(t.keys), unknownKey, malformedKey, PROVIDER_KEY, BOARD_PASSWORD, METRICS_TOKEN];
    for (const secret of secrets) {
      expect(all).not.toContain(secret);
      expect(all).not.toContain(secret.replace(/^tl_/, ''));
    }
    for (const key of [...Object.values(t.keys), unknownKey]) expect(all).not.toContain(hashApiKey(key));
    expect(all).toContain('tl_[redacted]');

    const scheduledLine = jsonLines.find((l) => l.msg === 'run scheduled' && l.runId === run.id);
    expect(scheduledLine).toMatchObject({ reqId: 'req-logging-1', tenantId: t.id, runId: run.id, level: 30 });
    expect(jsonLines.some((l) => l.reqId === 'req-logging-1' && l.msg === 'incoming request')).toBe(true);
    const completed = jsonLines.find((l) => l.msg === 'run completed' && l.runId === run.id);
    expect(completed).toMatchObject({ runId: run.id, queue: 'run-chunk', component: 'worker' });
    expect(String(completed?.jobId)).toMatch(new RegExp(`^${run.id}-\\d+$`));
  });
});

async function schedule(s: Stack, t: TenantFixture) {
  const ds = await makeDataset(s.container, t.id);
  const ev = await makeEval(s.container, t.id);
  const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
  await waitForRunEnd(s.baseUrl, t.keys.member, run.id);
}
