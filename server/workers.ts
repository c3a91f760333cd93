/**
 * startWorkers: the BullMQ workers of one process, one per entry of
 * jobs/registry.ts. The workers share one connection of this process's own
 * (server/redis.ts, worker role: retries forever), from which BullMQ
 * duplicates each worker's blocking connection; it is closed after them.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Container } from './container.ts';
import { settlesWithin } from '../domain/shared/deadline.ts';
import { sanitizeError } from '../domain/shared/errors.ts';
import { createRedis, logRedisErrors, type RedisClient } from './redis.ts';
import { EvaluatorCache } from '../domain/evaluators/evaluator-cache.ts';
import { PROCESSORS } from '../jobs/registry.ts';
import type { ProcessorDeps } from '../jobs/deps.ts';
import { LocalChunks } from '../domain/eval-runs/score-chunk.ts';
import { QUEUE_NAMES } from '../jobs/queues.ts';

export interface Workers {
  workers: Worker[];
  /** When this process last took or finished a job, or ran its heartbeat. */
  lastHeartbeat(): number;
  /** The workers' own Redis connection (for /readyz: the producer's can be fine while this one is lost). */
  redis: RedisClient;
  /** Stops taking jobs, lets in-flight ones finish until `deadlineMs`, then closes. */
  close(deadlineMs?: number): Promise<void>;
}

const RECONCILE_SCHEDULER_ID = 'reconcile-every';

export async function startWorkers(container: Container): Promise<Workers> {
  const { env } = container;
  const log = container.log.child({ component: 'worker' });
  const deps: ProcessorDeps = { container, log, evaluators: new EvaluatorCache(container), chunks: new LocalChunks() };
  const connection = createRedis(container.redisTopology, 'worker', 'evalgate-worker');
  logRedisErrors(connection, log, 'worker');
  let heartbeat = Date.now();

  const common = {
    connection,
    lockDuration: env.LOCK_DURATION_MS,
    stalledInterval: env.STALLED_INTERVAL_MS,
    maxStalledCount: 5,
  };
  const wrap =
    <R>(fn: (deps: ProcessorDeps, job: Job) => Promise<R>) =>
    async (job: Job): Promise<R> => {
      heartbeat = Date.now();
      try {
        return await fn({ ...deps, log: log.child({ jobId: job.id, queue: job.queueName }) }, job);
      } catch (err) {
        // BullMQ stores the message in Redis as failedReason: never item data or SQL.
        if (err instanceof UnrecoverableError) throw err;
        throw sanitizeError(err);
      } finally {
        heartbeat = Date.now();
      }
    };

  const workers = PROCESSORS.map(
    (p) =>
      new Worker(p.queue, wrap(p.process), {
        ...common,
        prefix: container.queuePrefix(p.queue),
        concurrency: p.concurrency(env),
        ...(p.settings ? { settings: p.settings } : {}),
      }),
  );
  const ownLogs = new Set(PROCESSORS.filter((p) => p.logsOwnFailures).map((p) => p.queue as string));
  for (const w of workers) {
    logRedisErrors(w, log, `worker ${w.name}`);
    w.on('failed', (job, err) => {
      // e.g. a failed delivery is logged (and recorded) by its processor; the reconciler does not retry it
      if (ownLogs.has(w.name)) return;
      const final = job ? job.attemptsMade >= (job.opts.attempts ?? 1) : true;
      log[final ? 'error' : 'warn']({ jobId: job?.id, queue: w.name, attempts: job?.attemptsMade, err: err.message }, final ? 'job failed for good; the reconciler will retry it' : 'job failed; will retry');
    });
  }

  // The scheduler lives in Redis; re-asserting it on a timer heals a FLUSHALL.
  const ensureScheduler = async () => {
    try {
      await container.queues.reconcile.upsertJobScheduler(
        RECONCILE_SCHEDULER_ID,
        { every: env.RECONCILE_INTERVAL_MS },
        { name: QUEUE_NAMES.reconcile, data: {}, opts: { removeOnComplete: true, removeOnFail: 50 } },
      );
      heartbeat = Date.now();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not register the reconcile scheduler; retrying');
    }
  };
  // Bounded: with Redis unusable at start the call waits for a connection, and the process must still come up
  // (and serve /healthz) instead of hanging here; the timer below registers it once Redis is back.
  await settlesWithin(ensureScheduler(), 2_000);
  const timer = setInterval(() => void ensureScheduler(), env.RECONCILE_INTERVAL_MS);
  timer.unref();

  log.info({ concurrency: env.WORKER_CONCURRENCY, chunkSize: env.CHUNK_SIZE }, 'workers started');
  return {
    workers,
    lastHeartbeat: () => heartbeat,
    redis: connection,
    async close(deadlineMs = env.SHUTDOWN_TIMEOUT_MS) {
      clearInterval(timer);
      const graceful = Promise.all(workers.map((w) => w.close()));
      let timeout: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>((resolve) => {
        timeout = setTimeout(() => resolve('expired'), deadlineMs);
      });
      const outcome = await Promise.race([graceful.then(() => 'closed' as const), expired]);
      clearTimeout(timeout);
      if (outcome === 'expired') {
        log.warn({ deadlineMs }, 'in-flight jobs did not finish before the deadline; forcing close (their locks expire and they are retried)');
        // While Redis is away (reconnecting) BullMQ's close, forced or not, returns the same pending promise
        // and never settles: after a short bound, drop the connections instead of waiting on them.
        const forced = await settlesWithin(Promise.all(workers.map((w) => w.close(true))), FORCED_CLOSE_MS);
        if (!forced) {
          // disconnect() waits on the same connections: start it and move on (the process exits after shutdown).
          log.warn({ ms: FORCED_CLOSE_MS }, 'workers could not close (Redis unreachable?); dropping their connections');
          for (const w of workers) void w.disconnect().catch(() => undefined);
        }
      }
      // BullMQ does not close a connection it was given
      if (!(await settlesWithin(connection.quit().catch(() => undefined), FORCED_CLOSE_MS))) connection.disconnect();
    },
  };
}

/** How long a forced close may take before the workers' connections are simply dropped. */
const FORCED_CLOSE_MS = 3_000;
