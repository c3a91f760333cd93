/**
 * Fault suite, repetitions: a run that generates each item three times (a
 * chat_completion target on a fake model started in the test process) loses
 * a worker to SIGKILL mid-generation. Every item still has exactly one
 * result, every (item, repetition) exactly one sample (done, none pending),
 * and the model saw no more calls for an item's prompt than its samples'
 * attempts together (each call is counted in Postgres before it is sent).
 */
import { describe, expect } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { startFakeLlm } from '../helpers/fake-llm.ts';
import { faultTest, report, seconds } from '../helpers/fault-rig.ts';

const REPS = 3;
const genItems = (n: number) => Array.from({ length: n }, (_, i) => ({ input: { question: `q${i}` }, expected_output: `Q${i}` }));
const TARGET = { type: 'chat_completion', provider: 'fake', model: 'gen-1', messages: [{ role: 'user', content: '{{input.question}}' }] };

describe('fault: repetitions', () => {
  faultTest(`SIGKILL of one of two workers mid-generation of a ${REPS}-repetition run: one result per item, one sample per repetition, calls ≤ attempts`, async (rig) => {
    const fake = await startFakeLlm({ latencyMs: 60 });
    try {
      const n = 150;
      const env = {
        JUDGE_CHUNK_SIZE: '20',
        JUDGE_CHUNK_PARALLELISM: '4',
        EVALGATE_PROVIDERS: JSON.stringify({ fake: { base_url: fake.url, concurrency: 16, rpm: 600_000, timeout_ms: 1_000, max_attempts: 3 } }),
      };
      const { workers, runId } = await rig.startRun(await rig.dataset(n, genItems(n)), { api: env, workers: [env, env], body: { target: TARGET, cache: false, repetitions: REPS } });
      await rig.waitProgress(runId, 0.3);
      const killedAt = Date.now();
      workers[0]!.kill('SIGKILL');
      expect((await workers[0]!.exited).signal).toBe('SIGKILL');

      const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: n, error_count: 0 });
      const rows = await sql<{ q: string; repetition: number; status: string; attempts: number }>(
        rig.em,
        `select d.input->>'question' as q, s.repetition, s.status, s.attempts
           from eval_run_samples s join dataset_items d on d.id = s.item_id where s.run_id = ?`,
        [runId],
      );
      expect(rows).toHaveLength(n * REPS);
      expect(new Set(rows.map((r) => `${r.q}#${r.repetition}`)).size).toBe(n * REPS);
      expect(rows.filter((r) => r.status !== 'done')).toEqual([]);
      const attempts = new Map<string, number>();
      for (const r of rows) attempts.set(r.q, (attempts.get(r.q) ?? 0) + r.attempts);
      const calls = new Map<string, number>();
      for (const e of [...fake.stats.log, ...fake.stats.hungLog]) if (e.kind === 'generate') calls.set(e.prompt ?? '', (calls.get(e.prompt ?? '') ?? 0) + 1);
      const over = [...calls].filter(([q, c]) => c > (attempts.get(q) ?? 0));
      expect(over, 'prompts called more often than their samples\' attempts').toEqual([]);
      const [items] = await sql<{ n: number; reps: number }>(
        rig.em,
        `select count(*)::int as n, min(jsonb_array_length(repetitions))::int as reps from eval_run_items where run_id = ?`,
        [runId],
      );
      expect(items).toEqual({ n, reps: REPS });
      report(`repetitions (${REPS}): worker SIGKILL mid-generation`, {
        recovery_s: seconds((done.completed_ms ?? 0) - killedAt),
        calls: [...calls.values()].reduce((a, b) => a + b, 0),
        attempts: rows.reduce((a, r) => a + r.attempts, 0),
        ...tally,
      });
    } finally {
      await fake.close();
    }
  });
});
