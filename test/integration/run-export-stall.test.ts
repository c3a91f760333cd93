/**
 * A client that opens exports of a run larger than the socket buffers and
 * then stops reading is cut after EXPORT_DRAIN_TIMEOUT_MS (500 ms here; 60 s
 * in production, test/unit/export-config.test.ts): the server closes the
 * connection (the client, reading again, gets a truncated body and then the
 * end), the per-tenant export slots are free again (four more exports answer
 * 200, not 429), no database session of the server is active or idle in a
 * transaction during the stall, each cut is logged with its reason, and
 * nothing else is logged above warn.
 */
import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../server/env.ts';
import { configuredSecrets, createLogger } from '../../server/logger.ts';
import { makeDataset, makeEval, makeTenant, items, type TenantFixture } from '../helpers/factories.ts';
import { seedCompletedRun, seedDataset } from '../helpers/seed-run.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const ITEMS = 500;
const ENV = { LOG_LEVEL: 'info', EXPORT_DRAIN_TIMEOUT_MS: '500' };

let s: Stack;
let a: TenantFixture;
let b: TenantFixture;
let bigRun: string;
let smallRun: string;
let probe: pg.Client;
const lines: string[] = [];

interface Stalled {
  socket: Socket;
  head: string;
  /** bytes received so far (the head's chunk included) */
  bytes: () => number;
  /** newlines received so far: JSONL records started before the stall, at most */
  newlines: () => number;
  /** resolves when the server's end of the stream has arrived (after the client reads again) */
  ended: Promise<void>;
}

/** Sends the export request, takes the answer's first chunk, then stops reading. */
function stalledExport(runId: string, key: string): Promise<Stalled> {
  return new Promise((resolve, reject) => {
    const port = Number(new URL(s.baseUrl).port);
    let bytes = 0;
    let newlines = 0;
    let endResolve: () => void = () => undefined;
    const ended = new Promise<void>((r) => (endResolve = r));
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET /v1/eval-runs/${runId}/items/export?format=jsonl HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n\r\n`);
    });
    let first = true;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      for (const c of chunk) if (c === 10) newlines++;
      if (first) {
        first = false;
        socket.pause();
        resolve({ socket, head: chunk.toString('latin1').split('\r\n')[0] ?? '', bytes: () => bytes, newlines: () => newlines, ended });
      }
    });
    socket.on('end', endResolve);
    socket.on('close', endResolve);
    socket.on('error', (err) => (first ? reject(err) : endResolve()));
  });
}

const cuts = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'run export cut');

async function serverConnections(): Promise<number> {
  return new Promise((resolve, reject) => s.app!.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** Sessions of the test database, other than this probe's, that hold a connection busy: running a statement or inside a transaction. */
async function busySessions(): Promise<{ pid: number; state: string; query: string }[]> {
  const { rows } = await probe.query<{ pid: number; state: string; query: string }>(
    `select pid, state, query from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and state in ('active', 'idle in transaction', 'idle in transaction (aborted)')`,
  );
  return rows;
}

beforeAll(async () => {
  const log = createLogger('info', { write: (line: string) => void lines.push(line) }, configuredSecrets(loadEnv(ENV)));
  // no workers: nothing of the server's touches the database unless a request does
  s = await startStack({ workers: false, env: ENV, log });
  a = await makeTenant(s.container, 'export stall a', 'org_export_stall_a');
  b = await makeTenant(s.container, 'export stall b', 'org_export_stall_b');
  // 500 items of ~50 kB (≈ 25 MB of JSONL): far more than the socket buffers of a client that does not read
  const ds = await seedDataset(s.container, a.id, ITEMS, { padBytes: 50_000 });
  bigRun = await seedCompletedRun(s.container, a.id, ds, (await makeEval(s.container, a.id)).evalVersionId);
  const small = await makeDataset(s.container, b.id, items(3));
  smallRun = await seedCompletedRun(s.container, b.id, small.datasetId, (await makeEval(s.container, b.id)).evalVersionId);
  probe = new pg.Client({ connectionString: s.env.DATABASE_URL });
  await probe.connect();
}, 120_000);

afterAll(async () => {
  await probe?.end();
  await s?.close();
});

describe('an export whose client stops reading', () => {
  it('is cut after EXPORT_DRAIN_TIMEOUT_MS: socket closed by the server, slot freed, no database session held, the cut logged', async () => {
    expect(s.env.EXPORT_DRAIN_TIMEOUT_MS).toBe(500);
    const stalled = await Promise.all(Array.from({ length: 4 }, () => stalledExport(bigRun, a.keys.viewer)));
    try {
      expect(stalled.map((x) => x.head)).toEqual(Array(4).fill('HTTP/1.1 200 OK'));

      // During the stall: sample the server's sessions until every export is cut; at least one sample lands before the first cut.
      const samples: { beforeCut: boolean; busy: Awaited<ReturnType<typeof busySessions>> }[] = [];
      for (let i = 0; i < 500 && cuts().length < 4; i++) {
        const busy = await busySessions();
        samples.push({ beforeCut: cuts().length === 0, busy });
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(cuts()).toHaveLength(4);
      expect(samples.filter((x) => x.beforeCut).length).toBeGreaterThan(0);
      expect(samples.flatMap((x) => x.busy)).toEqual([]);
      for (const c of cuts()) expect(c).toMatchObject({ level: 40, reason: 'client stopped reading', drainTimeoutMs: 500, err: expect.any(String) });

      // The server closed its ends: it holds no connection although the clients never closed theirs.
      await waitFor(async () => (await serverConnections()) === 0, { timeoutMs: 10_000, what: 'the server to drop the stalled connections' });
      // Reading again, each client gets what the kernel had queued, then the server's end: the export was cut short.
      for (const x of stalled) x.socket.resume();
      await Promise.all(stalled.map((x) => x.ended));
      for (const x of stalled) {
        expect(x.socket.readableEnded || x.socket.destroyed).toBe(true);
        expect(x.newlines()).toBeLessThan(ITEMS);
      }
    } finally {
      for (const x of stalled) x.socket.destroy();
    }

    // The four slots are free: four new exports of the same tenant answer 200 (a leaked slot would make the first a 429).
    const again = await Promise.all(Array.from({ length: 4 }, () => stalledExport(bigRun, a.keys.viewer)));
    for (const x of again) x.socket.destroy();
    expect(again.map((x) => x.head)).toEqual(Array(4).fill('HTTP/1.1 200 OK'));

    // Nothing crashed: the server answers, exports that are read complete, and nothing was logged above warn.
    expect((await fetch(`${s.baseUrl}/healthz`)).status).toBe(200);
    const whole = await waitFor(
      async () => {
        const r = await fetch(`${s.baseUrl}/v1/eval-runs/${smallRun}/items/export`, { headers: { authorization: `Bearer ${b.keys.viewer}` } });
        return r.status === 200 ? r.text() : null;
      },
      { timeoutMs: 10_000, what: 'a read export' },
    );
    expect(whole.trimEnd().split('\n')).toHaveLength(3);
    const big = await fetch(`${s.baseUrl}/v1/eval-runs/${bigRun}/items/export`, { headers: { authorization: `Bearer ${a.keys.viewer}` } });
    expect(big.status).toBe(200);
    expect((await big.text()).trimEnd().split('\n')).toHaveLength(ITEMS);
    const severe = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level > 40);
    expect(severe).toEqual([]);
  }, 60_000);
});
