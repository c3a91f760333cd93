/**
 * What the domain needs from the world, as types: the composition root
 * (server/container.ts) builds one object that satisfies them, and tests may
 * build their own. The domain never opens a connection and never imports
 * BullMQ: it hands work to the queues through the `JobProducer` port, which
 * jobs/producer.ts implements.
 */
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Env } from '../../server/env.ts';
import type { Faults } from './faults.ts';
import type { RedisClient } from './redis.ts';

export type { Env, Logger, RedisClient };

/** Hands work to the workers. Every method is idempotent per its arguments (deterministic job ids). */
export interface JobProducer {
  /** The run's start job (job id = run id). */
  runStart(runId: string): Promise<void>;
  /** The reconciler's repair of a pending run: adds its start job when there is none, retries it when it failed. True when it did either. */
  repairRunStart(runId: string): Promise<boolean>;
  /**
   * Every undone chunk of the run, a page at a time. With `repair`, a chunk whose
   * job exists is left alone unless that job failed, which is retried.
   * Returns how many jobs were (re)queued.
   */
  undoneChunks(em: EntityManager, runId: string, opts: { repair: boolean }): Promise<number>;
  /** One delivery per webhook for the run's ending (`ending`: completed_at in epoch ms). */
  webhookDeliveries(runId: string, ending: number, webhookIds: readonly string[]): Promise<void>;
  /**
   * The job that deletes what deleted runs and datasets left (domain/eval-runs/run-deletion.service.ts); a no-op
   * while one is queued. `turn` 1 is a job's own continuation (its id differs, so it can be added while it runs).
   */
  purgeDeletions(turn?: 0 | 1): Promise<void>;
}

/** The counters the workers feed (server/metrics.ts). */
export interface ScoreMetrics {
  /** Counts a chunk's results by status and observes each item's evaluator latency. */
  recordScored(results: readonly { status: string; latency_ms: number }[], inserted: number): void;
}

export interface Deps {
  env: Env;
  log: Logger;
  orm: MikroORM;
  /** Producer connection: fails fast instead of queueing commands while Redis is away. */
  redis: RedisClient;
  faults: Faults;
  producer: JobProducer;
  metrics: ScoreMetrics;
}
