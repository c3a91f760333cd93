/**
 * Crash class: a real evalgate API process with its V8 heap capped, sent
 * huge arrays (a million elements, in every array-taking input, several at
 * once) and large reads (pages of ~900 KiB items with limit=1000, many at
 * once). It must stay the same process (same PID, never exited), answer
 * /healthz 200, and keep its resident set (VmRSS from /proc) under a stated
 * bound. Measured in bytes and process state, not time.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { procMemoryMb, startEvalgateApi, type EvalgateProcess } from '../helpers/processes.ts';
import { api } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

const HEAP_CAP_MB = 256;
/** The stated bound: V8's capped heap plus code, buffers and the pg/ioredis clients, with room to spare. */
const RSS_BOUND_MB = 512;
const MAX_PAGE_BYTES = 4 * 1024 * 1024;

let s: Stack;
let t: TenantFixture;
let proc: EvalgateProcess;
let base: string;
let exited = false;


beforeAll(async () => {
  s = await startStack({ workers: false, http: false });
  t = await makeTenant(s.container);
  const started = await startEvalgateApi({
    LOG_LEVEL: 'info',
    DATABASE_URL: s.env.DATABASE_URL,
    REDIS_URL: s.env.REDIS_URL,
    EVALGATE_QUEUE_PREFIX: s.env.EVALGATE_QUEUE_PREFIX,
    MAX_PAGE_BYTES: String(MAX_PAGE_BYTES),
    NODE_OPTIONS: `--max-old-space-size=${HEAP_CAP_MB}`,
  });
  proc = started.proc;
  base = started.baseUrl;
  void proc.exited.then(() => (exited = true));
});

afterAll(async () => {
  if (exited) console.log(`evalgate exited; its last output:\n${proc.output().slice(-3000)}`);
  proc?.kill('SIGKILL');
  await proc?.exited;
  await s?.close();
});

const post = (path: string, body: string) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${t.keys.owner}`, 'content-type': 'application/json' }, body });

it('huge arrays and large reads leave it alive: same PID, /healthz 200, VmRSS under the bound', async () => {
  const pid = proc.child.pid!;
  const ds = (await api<{ id: string }>(base, 'POST', '/v1/datasets', t.keys.member, { name: 'big' })).body.id;

  // Arrays of just under MAX_JSON_VALUES (1,000,000) elements, each sent three times at once: the parse of such a
  // 3 MB body builds ~60 MB of heap, so it is charged 64 bytes per value against the tenant's body budget (64 MiB):
  // one parses at a time, the others answer 429; the one parsed is refused by its length before any element is
  // validated. One more value and the body is refused (413) before it is parsed at all.
  const million = (el: string) => `[${`${el},`.repeat(999_989)}${el}]`;
  const bodies: [string, string, number][] = [
    [`/v1/datasets/${ds}/items`, `{"items":${million('{}')}}`, 413],
    [`/v1/datasets/${ds}/items/delete`, `{"item_ids":${million('"x"')}}`, 400],
    ['/v1/evals', `{"name":"e","evaluator":{"type":"contains_any","values":${million('"a"')}}}`, 400],
    ['/v1/evals', `{"name":"e","evaluator":{"type":"json_match","paths":${million('"$.a"')}}}`, 400],
    [`/v1/datasets/${ds}/items`, `{"items":${`[${'{},'.repeat(1_000_000)}{}]`}}`, 413],
  ];
  for (const [path, body, status] of bodies) {
    const answers = await Promise.all(
      [0, 1, 2].map(() =>
        post(path, body).then(
          async (r) => [r.status, await r.json()] as const,
          (e: unknown) => [`${path}: ${String((e as Error).cause ?? e)}`, null] as const,
        ),
      ),
    );
    for (const [got, answer] of answers) {
      expect([status, 429], `${path}: ${JSON.stringify(answer)}`).toContain(got);
      expect(answer).toEqual({ error: expect.any(String) });
    }
    expect(answers.some(([got]) => got === status)).toBe(true);
  }

  // Large reads: 24 items of ~900 KiB (~21 MiB), read with limit=1000 by 8 clients at once, each walking every page.
  const filler = 'x'.repeat(900 * 1024);
  const lines = Array.from({ length: 24 }, (_, i) => JSON.stringify({ input: `${i} ${filler}`, expected_output: `${i}` })).join('\n');
  const up = await fetch(`${base}/v1/datasets/${ds}/items/upload`, { method: 'POST', headers: { authorization: `Bearer ${t.keys.member}`, 'content-type': 'application/x-ndjson' }, body: lines });
  expect(up.status).toBe(201);
  const walks = await Promise.all(
    Array.from({ length: 8 }, async () => {
      let cursor: string | null = null;
      let rows = 0;
      let largest = 0;
      do {
        const res = await fetch(`${base}/v1/datasets/${ds}/items?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${t.keys.viewer}` } });
        expect(res.status).toBe(200);
        const text = await res.text();
        largest = Math.max(largest, Buffer.byteLength(text));
        const page = JSON.parse(text) as { data: unknown[]; next_cursor: string | null };
        rows += page.data.length;
        cursor = page.next_cursor;
      } while (cursor);
      return { rows, largest };
    }),
  );
  for (const w of walks) {
    expect(w.rows).toBe(24);
    expect(w.largest).toBeLessThanOrEqual(MAX_PAGE_BYTES);
  }

  expect(exited).toBe(false);
  expect(proc.child.pid).toBe(pid);
  expect(() => process.kill(pid, 0)).not.toThrow();
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  const rss = procMemoryMb(pid, 'VmRSS');
  expect(rss).toBeGreaterThan(0);
  expect(rss).toBeLessThan(RSS_BOUND_MB);
  console.log(`hostile-memory: VmRSS after the attack ${rss.toFixed(0)} MB (bound ${RSS_BOUND_MB} MB, heap cap ${HEAP_CAP_MB} MB); largest page ${Math.max(...walks.map((w) => w.largest))} bytes`);
}, 300_000);
