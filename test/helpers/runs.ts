import { expect } from 'vitest';
import type { EvalRunDto } from '../../domain/eval-runs/eval-run.schema.ts';
import { waitFor } from './stack.ts';

export async function api<T = Record<string, unknown>>(
  baseUrl: string,
  method: string,
  path: string,
  key: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

export async function scheduleRun(baseUrl: string, key: string, datasetId: string, evalVersionId: string): Promise<EvalRunDto> {
  const r = await api<EvalRunDto>(baseUrl, 'POST', `/v1/datasets/${datasetId}/runs`, key, { eval_version_id: evalVersionId });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return r.body;
}

export async function getRun(baseUrl: string, key: string, runId: string): Promise<EvalRunDto> {
  const r = await api<EvalRunDto>(baseUrl, 'GET', `/v1/eval-runs/${runId}`, key);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

/** Polls the run until it is completed or failed. */
export async function waitForRunEnd(baseUrl: string, key: string, runId: string, timeoutMs = 60_000): Promise<EvalRunDto> {
  return waitFor(
    async () => {
      const run = await getRun(baseUrl, key, runId);
      return run.status === 'completed' || run.status === 'failed' ? run : null;
    },
    { timeoutMs, intervalMs: 100, what: `run ${runId} to end` },
  );
}

/** Polls until at least `share` of the run's items are done. */
export async function waitForProgress(baseUrl: string, key: string, runId: string, share: number, timeoutMs = 60_000): Promise<EvalRunDto> {
  return waitFor(
    async () => {
      const run = await getRun(baseUrl, key, runId);
      return run.completed_count >= run.item_count * share ? run : null;
    },
    { timeoutMs, intervalMs: 25, what: `run ${runId} to reach ${share * 100}%` },
  );
}
