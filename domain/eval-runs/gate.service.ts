/**
 * gateEvalRun: applies a policy to a run and answers a verdict with its
 * reasons, so a CI job can pass or fail a pull request on an eval. A run that
 * has not ended is `pending` (ask again); a run that ended `failed` (canceled,
 * given up) fails the gate whatever its counters say.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { isActiveRunStatus } from '../../entities/index.ts';
import { DomainError } from '../shared/errors.ts';
import { compareStatistics } from './compare-stats.ts';
import { pairSummary } from './compare.repository.ts';
import { listRunRows, type EvalRunRow } from './eval-run.repository.ts';
import { findRun } from './eval-run.service.ts';
import type { GateBaseline, GatePolicy, GateVerdict } from './gate.schema.ts';

type Check = GateVerdict['checks'][number];

/** The baseline run: the one named, or the latest completed run of the same dataset with the label (null: none yet). */
async function findBaseline(em: EntityManager, tenantId: string, run: EvalRunRow, baseline: GateBaseline | undefined): Promise<EvalRunRow | null> {
  if (!baseline) return null;
  if (baseline.run_id !== undefined) {
    if (baseline.run_id === run.id) throw new DomainError('BAD_REQUEST', 'invalid input: baseline.run_id: the baseline is the run itself');
    const base = await findRun(em, tenantId, baseline.run_id);
    if (isActiveRunStatus(base.status)) throw new DomainError('CONFLICT', `baseline run ${base.id} is ${base.status}; gate against a finished run`);
    return base;
  }
  const label = { name: baseline.name, metadata: baseline.metadata };
  const [newest, next] = await listRunRows(em, tenantId, run.dataset_id, 'completed', undefined, 2, label);
  return (newest?.id === run.id ? next : newest) ?? null;
}

export async function gateEvalRun(
  s: { em: EntityManager; tenantId: string },
  runId: string,
  policy: GatePolicy,
  baseline?: GateBaseline,
): Promise<GateVerdict> {
  const run = await findRun(s.em, s.tenantId, runId);
  const base = await findBaseline(s.em, s.tenantId, run, baseline);
  const withErrors = policy.errors_as_failures;
  const counted = run.passed_count + run.failed_count + (withErrors ? run.error_count : 0);
  const passRate = counted > 0 ? run.passed_count / counted : null;
  const criteria = (run.criteria_stats ?? []).map((c) => {
    const n = c.passed_count + c.failed_count + (withErrors ? c.error_count : 0);
    return { name: c.name, passed: c.passed_count, failed: c.failed_count, errors: c.error_count, pass_rate: n > 0 ? c.passed_count / n : null, counted: n };
  });
  const wanted = policy.min_criterion_pass_rate;
  if (wanted !== undefined && typeof wanted === 'object') {
    const unknown = Object.keys(wanted).filter((name) => !criteria.some((c) => c.name === name));
    if (unknown.length > 0) {
      const names = criteria.map((c) => c.name);
      throw new DomainError(
        'BAD_REQUEST',
        `invalid input: policy.min_criterion_pass_rate: eval run ${run.id} has no criterion ${unknown.map((u) => `"${u}"`).join(', ')} (its criteria: ${names.length ? names.join(', ') : 'none, it has one evaluator'})`,
      );
    }
  }
  const stats: GateVerdict['stats'] = {
    item_count: run.item_count,
    passed: run.passed_count,
    failed: run.failed_count,
    errors: run.error_count,
    pass_rate: passRate,
    criteria: criteria.map(({ counted: _, ...c }) => c),
    regressions: null,
    new_failures: null,
    significance: null,
  };
  const verdict = (v: GateVerdict['verdict'], reasons: string[], checks: Check[]): GateVerdict => ({
    run_id: run.id,
    baseline_run_id: base?.id ?? null,
    verdict: v,
    reasons,
    checks,
    stats,
  });
  if (isActiveRunStatus(run.status)) {
    return verdict('pending', [`the run is ${run.status} (${run.completed_count} of ${run.item_count} items scored)`], []);
  }

  if (base) {
    // the pair's summary, kept once computed (both runs are finished): every later gate of this run against this baseline reads it
    const c = await pairSummary(s.em, s.tenantId, base.id, run.id);
    stats.regressions = c.regressed;
    stats.new_failures = c.pass_to_fail + (withErrors ? c.pass_to_error : 0);
    if (policy.no_significant_regression === true) {
      const st = compareStatistics(c, policy.alpha);
      stats.significance = { mean_delta: st.mean_delta, ci_low: st.ci_low, ci_high: st.ci_high, p_value: st.p_value, verdict: st.verdict };
    }
  }
  const checks: Check[] = [];
  const reasons: string[] = [];
  if (run.status === 'failed') reasons.push(`the run ended failed: ${run.error_message ?? 'no reason recorded'}`);
  const check = (name: Check['check'], actual: number | null, limit: number, ok: boolean | null, reason: string, criterion?: string) => {
    const status = ok === null ? 'skipped' : ok ? 'passed' : 'failed';
    checks.push({ check: name, ...(criterion !== undefined && { criterion }), status, actual, limit });
    if (status === 'failed') reasons.push(reason);
  };
  if (policy.min_pass_rate !== undefined) {
    const limit = policy.min_pass_rate;
    check('min_pass_rate', passRate, limit, passRate !== null && passRate >= limit,
      passRate === null ? 'no item was scored' : `pass rate ${pct(passRate)} is below ${pct(limit)} (${run.passed_count} of ${counted} passed)`);
  }
  if (wanted !== undefined) {
    if (criteria.length === 0) {
      check('min_criterion_pass_rate', null, typeof wanted === 'number' ? wanted : 0, false, 'the run has one evaluator, not several criteria: min_criterion_pass_rate cannot hold');
    }
    for (const c of criteria) {
      const limit = typeof wanted === 'number' ? wanted : wanted[c.name];
      if (limit === undefined) continue;
      check('min_criterion_pass_rate', c.pass_rate, limit, c.pass_rate !== null && c.pass_rate >= limit,
        c.pass_rate === null ? `criterion ${c.name}: no item was scored` : `criterion ${c.name}: pass rate ${pct(c.pass_rate)} is below ${pct(limit)} (${c.passed} of ${c.counted} passed)`, c.name);
    }
  }
  if (policy.max_errors !== undefined) {
    const limit = policy.max_errors;
    check('max_errors', run.error_count, limit, run.error_count <= limit, `${run.error_count} items ended in error (at most ${limit} allowed)`);
  }
  if (policy.max_regressions !== undefined) {
    const limit = policy.max_regressions;
    const n = stats.regressions;
    check('max_regressions', n, limit, n === null ? null : n <= limit, `${n} items scored lower than in baseline run ${base?.id} (at most ${limit} allowed)`);
  }
  if (policy.no_new_failures === true) {
    const n = stats.new_failures;
    check('no_new_failures', n, 0, n === null ? null : n === 0, `${n} items that passed in baseline run ${base?.id} ${withErrors ? 'failed or errored' : 'failed'} in this run`);
  }
  if (policy.no_significant_regression === true) {
    const sig = stats.significance;
    check('no_significant_regression', sig?.p_value ?? null, policy.alpha, sig === null ? null : sig.verdict !== 'worse',
      `significantly worse than baseline run ${base?.id}: mean score ${fmt(sig?.mean_delta)} (${pct(1 - policy.alpha)} CI ${fmt(sig?.ci_low)} to ${fmt(sig?.ci_high)}), p = ${sig?.p_value?.toPrecision(2)}`);
  }
  return verdict(reasons.length > 0 ? 'failed' : 'passed', reasons, checks);
}

const fmt = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(3)}`);
const pct = (x: number) => `${(x * 100).toFixed(1).replace(/\.0$/, '')} %`;
