import type { Deps, Logger } from '../domain/shared/deps.ts';
import type { EvaluatorCache } from '../domain/evaluators/evaluator-cache.ts';
import type { LocalChunks } from '../domain/eval-runs/score-chunk.ts';
import type { jobOptions, Queues } from './queues.ts';

/** What a processor may use: the domain's dependencies plus the queues themselves (the reconciler repairs them). */
export interface JobDeps extends Deps {
  queues: Queues;
  jobOptions: ReturnType<typeof jobOptions>;
}

export interface WorkerDeps {
  container: JobDeps;
  log: Logger;
  evaluators: EvaluatorCache;
}

/** What the processors of one worker process are given: WorkerDeps plus the chunk jobs' shared bookkeeping. */
export interface ProcessorDeps extends WorkerDeps {
  chunks: LocalChunks;
}
