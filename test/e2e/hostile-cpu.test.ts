/**
 * The worst CPU a tenant can ask for, sent to one real evalgate process that
 * runs the API and the workers on one event loop (`main.ts all`): JSON schemas
 * and regexes at creation, and items at each evaluator's bound, including a
 * judge template that repeats {{output}} ten thousand times over a large
 * output. While all of it runs, /healthz is asked again and again and must
 * answer 200 every time; every item must end with a score or with the error
 * that names the bound that refused it. Latencies are measured and printed
 * (`[hostile-cpu] …`) for RELIABILITY.md, never asserted.
 */
import { mkdirSync, appendFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.ts';
import { startEvalgateApi, type EvalgateProcess } from '../helpers/processes.ts';
import { api, scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let s: Stack;
let t: TenantFixture;
let fake: FakeLlm;
let proc: EvalgateProcess;
let base: string;

beforeAll(async () => {
  s = await startStack({ workers: false, http: false });
  t = await makeTenant(s.container);
  fake = await startFakeLlm({});
  const started = await startEvalgateApi(
    {
      LOG_LEVEL: 'info',
      DATABASE_URL: s.env.DATABASE_URL,
      REDIS_URL: s.env.REDIS_URL,
      EVALGATE_QUEUE_PREFIX: s.env.EVALGATE_QUEUE_PREFIX,
      EVALGATE_PROVIDERS: JSON.stringify({ fake: { base_url: fake.url, api_key: 'sk-x', concurrency: 4, rpm: 100_000, timeout_ms: 5_000 } }),
      WORKER_CONCURRENCY: '4',
    },
    { mode: 'all' },
  );
  proc = started.proc;
  base = started.baseUrl;
}, 60_000);

afterAll(async () => {
  proc?.kill('SIGKILL');
  await proc?.exited;
  await fake?.close();
  await s?.close();
});

/** Asks /healthz back to back until stopped; every answer's status and latency is kept. */
function probeHealth() {
  const samples: Array<{ status: number; ms: number; at: number }> = [];
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const t0 = performance.now();
      let status = 0;
      try {
        status = (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(30_000) })).status;
      } catch {
        status = -1;
      }
      samples.push({ status, ms: performance.now() - t0, at: t0 });
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    samples,
    async stop() {
      stop = true;
      await done;
      return samples;
    },
  };
}

const words = (chars: number, swap = ''): string => {
  const vocab = ['alpha', 'beta', 'gamma', 'delta', 'eps', 'zeta', 'eta', 'theta', 'iota', 'kappa'];
  let out = '';
  for (let i = 0; out.length < chars; i++) out += `${swap && i % 10 === 3 ? swap : vocab[(i * 7) % 10]} `;
  return out.slice(0, chars);
};
const MIB = 1024 * 1024;
/** Items are at most MAX_ITEM_BYTES (1 MiB) when uploaded; these stay just under. */
const ITEM = MIB - 4_096;

/** `a{n}` = allOf [a{n-1}, a{n-1}]: 2^40 applications of a0. */
function laughs(): Record<string, unknown> {
  const defs: Record<string, unknown> = { a0: { type: 'string', minLength: 1 } };
  for (let i = 1; i <= 40; i++) defs[`a${i}`] = { allOf: [{ $ref: `#/definitions/a${i - 1}` }, { $ref: `#/definitions/a${i - 1}` }] };
  return { definitions: defs, $ref: '#/definitions/a40' };
}

interface Case {
  name: string;
  evaluator: unknown;
  item: { output: unknown; expected_output?: unknown };
  /** The item's error, or null when it must be scored. */
  error: RegExp | null;
}

/** An RE2 program of about 1,000 instructions per branch (REGEX_MAX_PROGRAM_SIZE is 10,000). */
const bigRegex = (branches: number): string => `(?:${Array.from({ length: branches }, (_, i) => `${String.fromCharCode(97 + i)}[a-z]{999}${String.fromCharCode(97 + i)}`).join('|')})+$`;
const partial = Array.from({ length: 1_000 }, (_, i) => `alpha theta eps beta X${i}`);
const wideList = { list: Array.from({ length: 60_000 }, (_, i) => i) };

const CASES: Case[] = [
  { name: 'contains_all at its bound', evaluator: { type: 'contains_all', values: partial }, item: { output: words(950_000) }, error: null },
  { name: 'contains_any past its bound', evaluator: { type: 'contains_any', values: partial }, item: { output: words(ITEM) }, error: /^inputs too large for contains_any \(\d+ chars × 1000 values > 1000000000\)$/ },
  { name: 'regex near its bound', evaluator: { type: 'regex', pattern: bigRegex(9) }, item: { output: words(10_500) }, error: null },
  { name: 'regex past its bound', evaluator: { type: 'regex', pattern: bigRegex(9) }, item: { output: words(ITEM) }, error: /^input too large for regex/ },
  { name: 'levenshtein near its bound', evaluator: { type: 'levenshtein' }, item: { output: words(21_000), expected_output: words(21_000, 'omega') }, error: null },
  { name: 'levenshtein past its bound', evaluator: { type: 'levenshtein' }, item: { output: words(ITEM / 2), expected_output: words(ITEM / 2, 'omega') }, error: /^inputs too large for levenshtein/ },
  { name: 'rouge_l near its bound', evaluator: { type: 'rouge_l' }, item: { output: words(26_000), expected_output: words(26_000, 'omega') }, error: null },
  { name: 'rouge_l past its bound', evaluator: { type: 'rouge_l' }, item: { output: words(ITEM / 2), expected_output: words(ITEM / 2, 'omega') }, error: /^inputs too large for rouge_l/ },
  { name: 'token_f1 on 2 × 0.5 MiB', evaluator: { type: 'token_f1' }, item: { output: words(ITEM / 2), expected_output: words(ITEM / 2, 'omega') }, error: null },
  { name: 'json_match past its node budget', evaluator: { type: 'json_match', paths: new Array<string>(200).fill('list') }, item: { output: wideList, expected_output: wideList }, error: /^values too large to compare \(more than 10000000 nodes\)$/ },
  { name: 'json_schema exponential $ref', evaluator: { type: 'json_schema', schema: laughs() }, item: { output: '"x"' }, error: /^json_schema validation exceeded its work budget \(5000000 units\)$/ },
  { name: 'json_schema uniqueItems on 40,000 objects', evaluator: { type: 'json_schema', schema: { type: 'array', uniqueItems: true } }, item: { output: Array.from({ length: 40_000 }, (_, i) => ({ i, v: 'xxxxxxxxxx' })) }, error: null },
  {
    name: 'llm_judge template repeating {{output}}',
    evaluator: { type: 'llm_judge', provider: 'fake', model: 'm', messages: [{ role: 'user', content: '{{output}}'.repeat(9_999) }], output: { kind: 'boolean' } },
    item: { output: words(ITEM) },
    error: /^prompt renders to \d+ bytes, more than MAX_PROMPT_BYTES \(2097152\)$/,
  },
];

/** A schema that costs just under SCHEMA_COMPILE_MAX_COST (5,000) to compile: 990 patterned properties. */
const costlySchema = { type: 'object', properties: Object.fromEntries(Array.from({ length: 990 }, (_, i) => [`p${i}`, { type: 'string', pattern: `^(\\pL{3}|x${i})+$` }])) };
const tooCostlySchema = { type: 'object', properties: Object.fromEntries(Array.from({ length: 1_200 }, (_, i) => [`p${i}`, { type: 'string', pattern: `^x${i}` }])) };

it('keeps /healthz answering while every CPU class runs at its bound, and each item is scored or refused by its bound', async () => {
  const pid = proc.child.pid;
  const baseline = probeHealth();
  await new Promise((r) => setTimeout(r, 1_000));
  const idle = await baseline.stop();

  // Datasets and evals go in through the stack's container (the attack is the evaluation, not the upload).
  const runs: Array<{ c: Case; runId: string }> = [];
  const prepared = [];
  for (const c of CASES) {
    const ds = await makeDataset(s.container, t.id, [{ input: 'q', expected_output: null, metadata: null, ...c.item }]);
    const ev = await makeEval(s.container, t.id, c.evaluator);
    prepared.push({ c, ds, ev });
  }

  const probe = probeHealth();
  // Config checks at creation, on the API: a schema near the compile bound (compiled on a thread), one past it
  // (refused before compiling), and the largest regex program accepted, several at once.
  const creations = await Promise.all([
    ...Array.from({ length: 3 }, () => api(base, 'POST', '/v1/evals', t.keys.member, { name: 'costly', evaluator: { type: 'json_schema', schema: costlySchema } })),
    api(base, 'POST', '/v1/evals', t.keys.member, { name: 'too costly', evaluator: { type: 'json_schema', schema: tooCostlySchema } }),
    api(base, 'POST', '/v1/evals', t.keys.member, { name: 're', evaluator: { type: 'regex', pattern: bigRegex(9), flags: 'i' } }),
    api(base, 'POST', '/v1/evals', t.keys.member, { name: 're too big', evaluator: { type: 'regex', pattern: bigRegex(11) } }),
  ]);
  const createdAt = performance.now();
  for (const p of prepared) runs.push({ c: p.c, runId: (await scheduleRun(base, t.keys.member, p.ds.datasetId, p.ev.evalVersionId)).id });
  const ends = await Promise.all(runs.map((r) => waitForRunEnd(base, t.keys.member, r.runId, 240_000)));
  const samples = await probe.stop();
  const slow = samples.filter((x) => x.ms > 50).map((x) => `${Math.round(x.ms)} ms at +${Math.round(x.at - samples[0]!.at)} ms`);
  console.log(`[hostile-cpu] slow healthz answers (> 50 ms): ${slow.join(', ') || 'none'}; creations answered at +${Math.round(createdAt - samples[0]!.at)} ms`);

  expect(creations.slice(0, 3).map((r) => r.status)).toEqual([201, 201, 201]);
  expect(creations[3]).toMatchObject({ status: 400, body: { error: expect.stringMatching(/evaluator\.schema: invalid JSON schema: schema too complex to compile \(cost 6001 > 5000/) } });
  expect(creations[4]!.status).toBe(201);
  expect(creations[5]).toMatchObject({ status: 400, body: { error: expect.stringMatching(/evaluator\.pattern: regular expression too complex \(RE2 program size \d+ > 10000\)/) } });

  const em = s.container.orm.em.fork();
  for (const [i, r] of runs.entries()) {
    expect(ends[i], r.c.name).toMatchObject({ status: 'completed', completed_count: 1 });
    const [row] = await sql<{ status: string; error: string | null; score: number | null }>(em, 'select status, error, score from eval_run_items where run_id = ?', [r.runId]);
    if (r.c.error) {
      expect(row, r.c.name).toMatchObject({ status: 'error' });
      expect(row!.error, r.c.name).toMatch(r.c.error);
    } else {
      expect(row!.status, `${r.c.name}: ${row!.error}`).not.toBe('error');
    }
  }
  expect(fake.stats.requests).toBe(0); // the oversized prompt was never sent

  // The process survived everything and answered /healthz every time.
  expect(proc.child.exitCode).toBeNull();
  expect(proc.child.pid).toBe(pid);
  expect(samples.length).toBeGreaterThan(10);
  expect(samples.filter((x) => x.status !== 200)).toEqual([]);

  const stats = (xs: Array<{ ms: number }>) => {
    const ms = xs.map((x) => x.ms).sort((a, b) => a - b);
    const q = (p: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!);
    return { n: ms.length, p50: q(0.5), p99: q(0.99), max: Math.round(ms[ms.length - 1]!) };
  };
  const measured = { idle: stats(idle), underAttack: stats(samples) };
  console.log(`[hostile-cpu] healthz latency ms: ${JSON.stringify(measured)}`);
  mkdirSync('test-artifacts', { recursive: true });
  appendFileSync('test-artifacts/hostile-cpu.jsonl', `${JSON.stringify({ at: new Date().toISOString(), ...measured })}\n`);
}, 300_000);
