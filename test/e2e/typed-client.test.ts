/**
 * The typed tRPC client a TypeScript app imports (`evalgate/client`), over
 * real HTTP against a stack with workers: schedule a run, follow it until it
 * completes, read its items, and see errors arrive as tRPC errors.
 */
import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvalgateClient, type AppRouter, type EvalgateClient } from '../../client/index.ts';
import { generateApiKey } from '../../domain/tenants/api-keys.ts';
import { items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

describe('createEvalgateClient', () => {
  let s: Stack;
  let t: TenantFixture;
  let client: EvalgateClient;
  beforeAll(async () => {
    s = await startStack({ workers: true, env: { CHUNK_SIZE: '4' } });
    t = await makeTenant(s.container);
    client = createEvalgateClient({ url: `${s.baseUrl}/`, apiKey: t.keys.member });
  });
  afterAll(async () => s?.close());

  it('schedules a run and follows it until it completes', async () => {
    const ds = await makeDataset(s.container, t.id, items(10, (i) => i < 6));
    const ev = await makeEval(s.container, t.id);

    const scheduled = await client.scheduleEvalRun.mutate({ id: ds.datasetId, eval_version_id: ev.evalVersionId });
    expect(scheduled).toMatchObject({ dataset_id: ds.datasetId, eval_version_id: ev.evalVersionId, status: 'pending', item_count: 10 });

    const done = await waitFor(
      async () => {
        const run = await client.getEvalRun.query({ id: scheduled.id });
        return run.status === 'completed' || run.status === 'failed' ? run : null;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: 'the run to end' },
    );
    expect(done).toMatchObject({ id: scheduled.id, status: 'completed', completed_count: 10, passed_count: 6, failed_count: 4, error_count: 0, mean_score: 0.6 });
    expect(typeof done.completed_at).toBe('string'); // no transformer: dates are ISO strings, as over REST

    const page = await client.listEvalRunItems.query({ id: scheduled.id, status: 'failed' });
    expect(page.data).toHaveLength(4);
    expect(page.data.every((r) => r.status === 'failed')).toBe(true);
  });

  it('surfaces auth, role and validation errors as tRPC errors with their codes', async () => {
    const unknown = createEvalgateClient({ url: s.baseUrl, apiKey: generateApiKey() });
    const viewer = createEvalgateClient({ url: s.baseUrl, apiKey: t.keys.viewer });
    const ds = await makeDataset(s.container, t.id);
    const ev = await makeEval(s.container, t.id);

    const codeOf = async (p: Promise<unknown>) => {
      const err = await p.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(TRPCClientError);
      return (err as TRPCClientError<AppRouter>).data?.code;
    };
    expect(await codeOf(unknown.getEvalRun.query({ id: ds.datasetId }))).toBe('UNAUTHORIZED');
    expect(await codeOf(viewer.scheduleEvalRun.mutate({ id: ds.datasetId, eval_version_id: ev.evalVersionId }))).toBe('FORBIDDEN');
    expect(await codeOf(client.getEvalRun.query({ id: ds.datasetId }))).toBe('NOT_FOUND');
    expect(await codeOf(client.getEvalRun.query({ id: 'not-a-uuid' }))).toBe('BAD_REQUEST');
  });
});
