/**
 * The gate: a declarative policy applied to a finished run (and, for the
 * checks that need one, a baseline run), answering a verdict with its reasons.
 */
import { z } from 'zod';
import { MAX_CRITERIA, MAX_CRITERION_NAME_LENGTH } from '../evaluators/evaluator.schema.ts';
import { uuid } from '../shared/common.schema.ts';
import { runMetadata, runName } from './eval-run.schema.ts';

export const GATE_CHECKS = ['min_pass_rate', 'min_criterion_pass_rate', 'max_errors', 'max_regressions', 'no_new_failures', 'no_significant_regression'] as const;

export const gatePolicySchema = z
  .strictObject({
    min_pass_rate: z.number().min(0).max(1).optional().describe('Least share of scored items that must pass (0–1)'),
    min_criterion_pass_rate: z
      .union([
        z.number().min(0).max(1),
        z
          .record(z.string().min(1).max(MAX_CRITERION_NAME_LENGTH), z.number().min(0).max(1))
          .refine((r) => Object.keys(r).length >= 1 && Object.keys(r).length <= MAX_CRITERIA, `name between 1 and ${MAX_CRITERIA} criteria`),
      ])
      .optional()
      .describe('Least pass rate of each criterion (a number: every criterion; an object: the criteria it names) of a run with several criteria; errors count as errors_as_failures says'),
    max_errors: z.int().min(0).optional().describe('Most items that may end in error'),
    max_regressions: z.int().min(0).optional().describe('Most items whose score went down against the baseline'),
    no_new_failures: z.boolean().optional().describe('No item that passed in the baseline may fail in this run'),
    no_significant_regression: z
      .boolean()
      .optional()
      .describe('Fail only when the run is significantly worse than the baseline (compareEvalRuns\' verdict "worse" at alpha): chance differences pass'),
    alpha: z.number().min(0.0001).max(0.5).default(0.05).describe('Significance level of no_significant_regression (default 0.05)'),
    errors_as_failures: z
      .boolean()
      .default(true)
      .describe('Count error items as failures in the pass rate and as new failures (default true); false leaves them out'),
  })
  .meta({ id: 'GatePolicy' });
export type GatePolicy = z.infer<typeof gatePolicySchema>;

export const gateBaselineSchema = z
  .strictObject({
    run_id: uuid().optional().describe('This run is the baseline'),
    name: runName.optional().describe('The latest completed run of the same dataset with this name is the baseline'),
    metadata: runMetadata.optional().describe('… whose metadata contains this object'),
  })
  .refine((b) => (b.run_id !== undefined) !== (b.name !== undefined || b.metadata !== undefined), {
    message: 'give either run_id, or name and/or metadata',
  })
  .meta({ id: 'GateBaseline' });
export type GateBaseline = z.infer<typeof gateBaselineSchema>;

export const gateEvalRunInput = z.object({
  id: uuid().describe('Eval run id'),
  policy: gatePolicySchema,
  baseline: gateBaselineSchema.optional(),
});

export const gateVerdictSchema = z
  .object({
    run_id: uuid(),
    baseline_run_id: uuid().nullable().describe('The baseline the comparison checks used; null without one'),
    verdict: z.enum(['passed', 'failed', 'pending']).describe('pending: the run has not ended yet (ask again)'),
    reasons: z.array(z.string()).describe('Why the gate failed or is pending; empty when it passed'),
    checks: z.array(
      z.object({
        check: z.enum(GATE_CHECKS),
        criterion: z.string().optional().describe('The criterion a min_criterion_pass_rate check is about'),
        status: z.enum(['passed', 'failed', 'skipped']).describe('skipped: the check needs a baseline and none was found'),
        actual: z.number().nullable(),
        limit: z.number(),
      }),
    ),
    stats: z.object({
      item_count: z.int(),
      passed: z.int(),
      failed: z.int(),
      errors: z.int(),
      pass_rate: z.number().nullable().describe('passed / (passed + failed [+ errors]); null when nothing counts'),
      criteria: z
        .array(
          z.object({
            name: z.string(),
            passed: z.int(),
            failed: z.int(),
            errors: z.int(),
            pass_rate: z.number().nullable().describe('As pass_rate, for this criterion'),
          }),
        )
        .describe('Per criterion, for a run with several criteria (empty for one evaluator)'),
      regressions: z.int().nullable(),
      new_failures: z.int().nullable(),
      significance: z
        .object({
          mean_delta: z.number().nullable(),
          ci_low: z.number().nullable(),
          ci_high: z.number().nullable(),
          p_value: z.number().nullable(),
          verdict: z.enum(['better', 'worse', 'no_significant_difference']),
        })
        .nullable()
        .describe('Against the baseline, as compareEvalRuns computes it (null without a baseline or without no_significant_regression)'),
    }),
  })
  .meta({ id: 'GateVerdict' });
export type GateVerdict = z.infer<typeof gateVerdictSchema>;
