import type { EvalRunRow, RunItemRow } from './eval-run.repository.ts';
import type { EvalRunDto } from './eval-run.schema.ts';

export { EVAL_RUN_COLUMNS, type EvalRunRow } from './eval-run.repository.ts';

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

export function toEvalRunDto(r: EvalRunRow): EvalRunDto {
  const scored = r.passed_count + r.failed_count;
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    dataset_id: r.dataset_id,
    eval_version_id: r.eval_version_id,
    status: r.status,
    item_count: r.item_count,
    completed_count: r.completed_count,
    started_at: iso(r.started_at),
    completed_at: iso(r.completed_at),
    error_message: r.error_message,
    created_at: iso(r.created_at) as string,
    name: r.name,
    metadata: r.metadata,
    dataset_version_id: r.dataset_version_id,
    passed_count: r.passed_count,
    failed_count: r.failed_count,
    error_count: r.error_count,
    mean_score: scored > 0 ? Number(r.score_sum) / scored : null,
    usage: { prompt_tokens: Number(r.prompt_tokens), completion_tokens: Number(r.completion_tokens) },
    cost_usd: r.cost_usd === null ? null : Number(r.cost_usd),
    target: (r.target as EvalRunDto['target'] | null) ?? { type: 'dataset_output' },
    outputs_from_run: r.outputs_from_run_id,
    cache: r.use_cache,
    max_cost_usd: r.max_cost_usd === null ? null : Number(r.max_cost_usd),
    criteria: (r.criteria_stats ?? []).map((c) => {
      const n = c.passed_count + c.failed_count;
      return {
        name: c.name,
        passed_count: c.passed_count,
        failed_count: c.failed_count,
        error_count: c.error_count,
        mean_score: n > 0 ? Number(c.score_sum) / n : null,
        pass_rate: n > 0 ? c.passed_count / n : null,
      };
    }),
    repetitions: r.repetitions,
    repetition_pass: { min_passed: r.repetition_min_passed ?? r.repetitions },
    sample_count: r.item_count * r.repetitions,
    completed_samples: r.completed_count * r.repetitions,
    pass_at_1: scored > 0 ? Number(r.passed_samples) / (scored * r.repetitions) : null,
    pass_hat_n: scored > 0 ? r.all_passed_count / scored : null,
    mean_item_sd: scored > 0 && r.repetitions > 1 ? Number(r.score_sd_sum) / scored : null,
  };
}

/** A result with its item as listed and exported: an item without an output or expected output says null. */
export const toRunItemDto = (r: RunItemRow) => ({
  ...r,
  output: r.output ?? null,
  expected_output: r.expected_output ?? null,
  sample: r.sample ?? null,
  scores: r.scores ?? null,
  repetitions: r.repetitions ?? null,
  passed_repetitions: r.passed_repetitions ?? null,
  score_sd: r.score_sd ?? null,
});
