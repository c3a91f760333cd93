/** One repetition's outcome, as a result keeps it in `repetitions` (a leaf module: the repository reads the type). */
import type { CriterionScore } from '../evaluators/criteria.ts';

export interface RepetitionOutcome {
  repetition: number;
  status: 'passed' | 'failed' | 'error';
  score: number | null;
  passed: boolean | null;
  reason: string | null;
  error: string | null;
  scores?: CriterionScore[];
}
