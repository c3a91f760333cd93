/**
 * A read replica (README: Running past one machine): a disposable primary and
 * a streaming hot standby of it (pg_basebackup -R), evalgate with
 * DATABASE_URL on the primary and DATABASE_REPLICA_URL on the replica. With
 * the replica's replay paused, a run scheduled on the primary is answered by
 * the schedule (a write) and seen by the gate (a mutation, on the primary),
 * while get and list (reads) do not see it yet: they read the replica. Once
 * replay resumes they do, and the run completes exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { items, makeDataset } from '../helpers/factories.ts';
import { startDisposablePostgres, startDisposableReplica, type DisposablePostgres } from '../helpers/processes.ts';
import { api, waitForRunEnd } from '../helpers/runs.ts';
import { uniqueName, waitFor } from '../helpers/stack.ts';
import { startEvalgate, type TopologyStack } from '../helpers/topology-stack.ts';

describe('read replica (DATABASE_REPLICA_URL)', () => {
  let primary: DisposablePostgres;
  let replica: Awaited<ReturnType<typeof startDisposableReplica>>;
  let s: TopologyStack;
  beforeAll(async () => {
    primary = await startDisposablePostgres();
    replica = await startDisposableReplica(primary);
    const db = uniqueName('evalgate_replica');
    s = await startEvalgate({ DATABASE_URL: primary.databaseUrl(db), DATABASE_REPLICA_URL: replica.databaseUrl(db), EVALGATE_FAULT: '' });
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await replica?.destroy();
    await primary?.destroy();
  });

  it('reads go to the replica, writes and the gate to the primary', async () => {
    const key = s.tenant.keys.member;
    const ds = await makeDataset(s.container, s.tenant.id, items(30, (i) => i % 3 !== 0));
    // the replica has caught up with the tenant, its key and the dataset
    await waitFor(async () => ((await api(s.baseUrl, 'GET', `/v1/datasets/${ds.datasetId}`, key)).status === 200 ? true : null), { timeoutMs: 30_000, intervalMs: 100, what: 'the replica to catch up' });

    await replica.pauseReplay();
    const scheduled = await api<{ id: string; status: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, key, { eval_version_id: s.evalVersionId });
    expect(scheduled.status, JSON.stringify(scheduled.body)).toBe(202);
    const runId = scheduled.body.id;
    // the workers (on the primary) run it; the gate reads the primary and sees it
    const gate = await waitFor(
      async () => {
        const g = await api<{ verdict: string; stats: { passed: number } }>(s.baseUrl, 'POST', `/v1/eval-runs/${runId}/gate`, key, { policy: { min_pass_rate: 0.5 } });
        return g.status === 200 && g.body.verdict !== 'pending' ? g : null;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the run to end on the primary' },
    );
    expect(gate.body).toMatchObject({ verdict: 'passed', stats: { passed: 20 } });
    // reads go to the replica, which has not replayed the run yet
    expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${runId}`, key)).status).toBe(404);
    const listed = await api<{ data: { id: string }[] }>(s.baseUrl, 'GET', `/v1/datasets/${ds.datasetId}/runs`, key);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((r) => r.id)).not.toContain(runId);
    const exported = await fetch(`${s.baseUrl}/v1/eval-runs/${runId}/items/export`, { headers: { authorization: `Bearer ${key}` } });
    expect(exported.status).toBe(404);
    await exported.body?.cancel();

    await replica.resumeReplay();
    await waitFor(async () => ((await api(s.baseUrl, 'GET', `/v1/eval-runs/${runId}`, key)).status === 200 ? true : null), { timeoutMs: 30_000, intervalMs: 100, what: 'the replica to replay the run' });
    const done = await waitForRunEnd(s.baseUrl, key, runId);
    expect(done).toMatchObject({ status: 'completed', completed_count: 30, passed_count: 20, failed_count: 10 });
    const page = await api<{ data: unknown[] }>(s.baseUrl, 'GET', `/v1/eval-runs/${runId}/items?limit=100`, key);
    expect(page.body.data).toHaveLength(30);

    // a replica that is down: its reads answer 503 { error }, writes go on
    await replica.stop('immediate');
    const down = await api<Record<string, unknown>>(s.baseUrl, 'GET', `/v1/eval-runs/${runId}`, key);
    expect(down.status).toBe(503);
    expect(Object.keys(down.body)).toEqual(['error']);
    const write = await api(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, key, { eval_version_id: s.evalVersionId });
    expect(write.status).toBe(202);
  });
});
