/**
 * Prometheus metrics. One prom-client Registry per container, never the
 * global one: tests build several containers in one process. Queue and run
 * gauges are read on scrape, each read bounded, so a dead Redis or Postgres
 * makes a scrape miss those series instead of hanging it.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { OpenAPIObject } from 'trpc-to-openapi';
import type { Queues } from '../jobs/queues.ts';
import { sameSecret } from './auth.ts';
import { withDeadline } from '../domain/shared/deadline.ts';
import { countRunsByStatus } from '../domain/eval-runs/eval-run.repository.ts';
import { countDeletions } from '../domain/eval-runs/run-deletion.repository.ts';
import { ITEM_STATUSES, RUN_STATUSES } from '../entities/index.ts';
import { errorBody } from './errors.ts';
import type { Env } from './env.ts';
import type { Logger } from './logger.ts';

const SCRAPE_TIMEOUT_MS = 1_000;
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
const ITEM_STATUS_SET: ReadonlySet<string> = new Set(ITEM_STATUSES);

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Counts a chunk's results by status and observes each item's evaluator latency. */
  recordScored(results: readonly { status: string; latency_ms: number }[], inserted: number): void;
}

export interface MetricSources {
  queues: Queues;
  orm: MikroORM;
  log: Logger;
}

const bounded = <T>(p: Promise<T>, what: string): Promise<T> => withDeadline(p, SCRAPE_TIMEOUT_MS, what);

export function createMetrics({ queues, orm, log }: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const httpDuration = new Histogram({
    name: 'evalgate_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const itemsScored = new Counter({
    name: 'evalgate_items_scored_total',
    help: 'Item results recorded by the workers of this process, by status',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const evaluatorLatency = new Histogram({
    name: 'evalgate_evaluator_duration_seconds',
    help: 'Time the evaluator took for one item (an llm_judge item includes its provider calls)',
    buckets: [0.0001, 0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  new Gauge({
    name: 'evalgate_queue_jobs',
    help: 'BullMQ jobs per queue and state, read on scrape (absent when Redis does not answer)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        queues.all().map(async (q) => {
          try {
            const counts = await bounded(q.getJobCounts(...QUEUE_STATES), `queue ${q.name} counts`);
            for (const state of QUEUE_STATES) this.set({ queue: q.name, state }, counts[state] ?? 0);
          } catch (err) {
            log.debug({ err: (err as Error).message, queue: q.name }, 'metrics: queue counts unavailable');
          }
        }),
      );
    },
  });
  new Gauge({
    name: 'evalgate_runs',
    help: 'Eval runs by status, every tenant, read on scrape (absent when Postgres does not answer)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      try {
        const rows = await bounded(
          countRunsByStatus(orm.em.fork()),
          'run counts',
        );
        for (const status of RUN_STATUSES) this.set({ status }, rows.find((r) => r.status === status)?.n ?? 0);
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'metrics: run counts unavailable');
      }
    },
  });
  new Gauge({
    name: 'evalgate_deletions_pending',
    help: 'Deleted runs and datasets whose rows the background purge has not finished deleting, read on scrape',
    labelNames: ['kind'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      try {
        const rows = await bounded(countDeletions(orm.em.fork()), 'deletion counts');
        for (const kind of ['run', 'dataset'] as const) this.set({ kind }, rows.find((r) => r.kind === kind)?.n ?? 0);
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'metrics: deletion counts unavailable');
      }
    },
  });

  return {
    registry,
    httpDuration,
    recordScored(results, inserted) {
      for (const r of results) evaluatorLatency.observe(r.latency_ms / 1_000);
      // A partial insert means another delivery recorded some of these items (and counted them);
      // which ones is unknown here, so this chunk counts none rather than guess.
      if (inserted !== results.length) return;
      for (const r of results) itemsScored.inc({ status: ITEM_STATUS_SET.has(r.status) ? r.status : 'other' });
    },
  };
}

/**
 * `GET /metrics`, and the request-duration hook on every route registered
 * after it. Routes are labelled by pattern: REST requests reach Fastify through
 * trpc-to-openapi's catch-all, so they are matched against the OpenAPI paths;
 * anything else unmatched is `unmatched`, so scanners cannot blow up the label set.
 */
export function registerMetrics(app: FastifyInstance, { metrics, env }: { metrics: Metrics; env: Env }, doc: OpenAPIObject): void {
  const restRoute = restRouteMatcher(doc);
  app.addHook('onResponse', async (req, reply) => {
    let route = req.routeOptions.url;
    if (route === undefined || route === '/*') route = restRoute(req.method, req.url) ?? 'unmatched';
    metrics.httpDuration.observe({ method: req.method, route: route.replace(/:(\w+)/g, '{$1}'), status: String(reply.statusCode) }, reply.elapsedTime / 1_000);
  });

  const token = env.EVALGATE_METRICS_TOKEN;
  app.get('/metrics', async (req: FastifyRequest, reply: FastifyReply) => {
    if (token !== undefined && !sameSecret(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '', token)) {
      return reply.status(401).header('www-authenticate', 'Bearer').send(errorBody('metrics need "Authorization: Bearer <EVALGATE_METRICS_TOKEN>"'));
    }
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
}

function restRouteMatcher(doc: OpenAPIObject): (method: string, url: string) => string | undefined {
  const routes = Object.entries(doc.paths ?? {})
    .flatMap(([path, item]) =>
      Object.keys(item ?? {}).map((method) => ({
        method: method.toUpperCase(),
        path,
        params: (path.match(/\{/g) ?? []).length,
        re: new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
      })),
    )
    // A literal segment wins over a parameter: /v1/eval-runs/compare before /v1/eval-runs/{id}.
    .sort((a, b) => a.params - b.params);
  return (method, url) => {
    const path = url.split('?')[0] ?? url;
    return routes.find((r) => r.method === method && r.re.test(path))?.path;
  };
}
