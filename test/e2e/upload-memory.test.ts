/**
 * A 100,000-item NDJSON upload (~75 MB) into a real API process whose V8
 * heap is capped at 96 MB, with its peak RSS (VmHWM from /proc) read before
 * and after: a handler that held the body would crash or grow by the body's
 * size; streaming grows by a few batches. Then the copy-free claim at that
 * size: one more item is one more row. (Without a cap V8 collects lazily and
 * RSS floats higher; that is garbage, not retention: BENCHMARKS.md.)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { procMemoryMb, startEvalgateApi, type EvalgateProcess } from '../helpers/processes.ts';
import { api } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let s: Stack;
let t: TenantFixture;
let proc: EvalgateProcess;
let base: string;

const HEAP_CAP_MB = 96;


beforeAll(async () => {
  s = await startStack({ workers: false, http: false });
  t = await makeTenant(s.container);
  // Port 0: the process picks its port and logs it (info), so no other process can take it first.
  const started = await startEvalgateApi({
    LOG_LEVEL: 'info',
    DATABASE_URL: s.env.DATABASE_URL,
    REDIS_URL: s.env.REDIS_URL,
    EVALGATE_QUEUE_PREFIX: s.env.EVALGATE_QUEUE_PREFIX,
    // A V8 heap capped well below the body's size: buffering the body would end in an out-of-memory crash.
    NODE_OPTIONS: `--max-old-space-size=${HEAP_CAP_MB}`,
  });
  proc = started.proc;
  base = started.baseUrl;
});

afterAll(async () => {
  proc?.kill('SIGKILL');
  await proc?.exited;
  await s?.close();
});

it('streams 100,000 items (~80 MB) with bounded memory, and one more item adds one row', async () => {
  const ds = (await api<{ id: string }>(base, 'POST', '/v1/datasets', t.keys.member, { name: 'big' })).body.id;
  const N = 100_000;
  const filler = 'lorem ipsum dolor sit amet '.repeat(25); // ~700 bytes a line
  let sent = 0;
  const enc = new TextEncoder();
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i >= N) return controller.close();
      let chunk = '';
      for (let k = 0; k < 500 && i < N; k++, i++) chunk += `${JSON.stringify({ input: `q${i} ${filler}`, expected_output: `a${i}`, output: `a${i}`, metadata: { i } })}\n`;
      sent += chunk.length;
      controller.enqueue(enc.encode(chunk));
    },
  });
  // warm up (first request compiles and connects), so the measurement sees only the upload itself
  const warm = (await api<{ id: string }>(base, 'POST', '/v1/datasets', t.keys.member, { name: 'warm' })).body.id;
  const warmBody = Array.from({ length: 5_000 }, (_, k) => JSON.stringify({ input: `w${k} ${filler}` })).join('\n');
  const w = await fetch(`${base}/v1/datasets/${warm}/items/upload`, { method: 'POST', headers: { authorization: `Bearer ${t.keys.member}`, 'content-type': 'application/x-ndjson' }, body: warmBody });
  expect(w.status).toBe(201);
  const before = procMemoryMb(proc.child.pid as number, 'VmHWM');
  const res = await fetch(`${base}/v1/datasets/${ds}/items/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.keys.member}`, 'content-type': 'application/x-ndjson' },
    body,
    duplex: 'half',
  } as RequestInit);
  expect(res.status).toBe(201);
  expect(await res.json()).toMatchObject({ version: 2, item_count: N });
  const after = procMemoryMb(proc.child.pid as number, 'VmHWM');
  const bodyMb = sent / 1024 / 1024;
  console.log(`upload: ${bodyMb.toFixed(0)} MB body, API peak RSS ${before.toFixed(0)} → ${after.toFixed(0)} MB (heap cap ${HEAP_CAP_MB} MB)`);
  expect(bodyMb).toBeGreaterThan(70);
  // Holding the body (let alone parsing it whole) would add at least its size; streaming adds a few batches.
  expect(after - before).toBeLessThan(bodyMb / 2);

  const rows = async () => (await sql<{ n: number }>(s.container.orm.em.fork(), 'select count(*)::int as n from dataset_items where dataset_id = ?', [ds]))[0]?.n;
  expect(await rows()).toBe(N);
  const v3 = await api(base, 'POST', `/v1/datasets/${ds}/items`, t.keys.member, { items: [{ input: 'one more' }] });
  expect(v3.body).toMatchObject({ version: 3, item_count: N + 1 });
  expect(await rows()).toBe(N + 1);
}, 180_000);
