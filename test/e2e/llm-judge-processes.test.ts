/**
 * The provider limit is shared by every worker process through Redis: two
 * worker processes, each allowed to judge 32 items at once, together never
 * have more requests in flight at the fake provider than its concurrency.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { assertCountersExact, makeDataset, makeEval, makeTenant } from '../helpers/factories.ts';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.ts';
import { spawnEvalgate, type EvalgateProcess } from '../helpers/processes.ts';
import { scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let fake: FakeLlm;
let s: Stack;
const procs: EvalgateProcess[] = [];
let providers: string;

beforeAll(async () => {
  fake = await startFakeLlm({ latencyMs: 60 });
  providers = JSON.stringify({ fake: { base_url: fake.url, api_key: 'sk-x', concurrency: 3, rpm: 100_000, timeout_ms: 5_000 } });
  s = await startStack({ workers: false, env: { EVALGATE_PROVIDERS: providers } });
});
afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await s?.close();
  await fake?.close();
});

it('two worker processes together respect one provider concurrency of 3', async () => {
  const t = await makeTenant(s.container);
  const ds = await makeDataset(
    s.container,
    t.id,
    Array.from({ length: 120 }, (_, i) => ({ input: i, expected_output: 'x', output: i % 2 ? 'x' : 'y' })),
  );
  const ev = await makeEval(s.container, t.id, {
    type: 'llm_judge',
    provider: 'fake',
    model: 'm',
    messages: [{ role: 'user', content: 'OUTPUT: {{output}}\nEXPECTED: {{expected_output}}' }],
    output: { kind: 'boolean' },
  });
  const env = {
    LOG_LEVEL: 'warn',
    DATABASE_URL: s.env.DATABASE_URL,
    REDIS_URL: s.env.REDIS_URL,
    EVALGATE_QUEUE_PREFIX: s.env.EVALGATE_QUEUE_PREFIX,
    EVALGATE_PROVIDERS: providers,
    JUDGE_CHUNK_SIZE: '10',
    JUDGE_CHUNK_PARALLELISM: '32',
    WORKER_CONCURRENCY: '4',
  };
  procs.push(spawnEvalgate('worker', env), spawnEvalgate('worker', env));
  const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
  const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 120_000);
  expect(done).toMatchObject({ status: 'completed', completed_count: 120, passed_count: 60, failed_count: 60, error_count: 0 });
  expect(fake.stats.maxInFlight).toBeLessThanOrEqual(3);
  expect(fake.stats.maxInFlight).toBeGreaterThanOrEqual(2);
  expect(fake.stats.requests).toBe(120);
  await assertCountersExact(s.container.orm.em.fork(), run.id);
  for (const p of procs) p.kill('SIGTERM');
  for (const p of procs) expect((await p.exited).code).toBe(0);
}, 150_000);
