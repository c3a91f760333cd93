/**
 * A worker process (`main.ts worker`) serves no API, but ops still need its
 * /metrics (items scored, evaluator latencies: counted where the scoring
 * happens), /healthz and /readyz. With WORKER_HTTP_PORT set it serves those
 * three on that port; unset, it listens on nothing (a worker next to an API
 * on the same host would otherwise collide on PORT).
 */
import Fastify, { type FastifyBaseLogger } from 'fastify';
import type { Workers } from './workers.ts';
import type { Container } from './container.ts';
import { registerHealth } from './health.ts';
import { registerMetrics } from './metrics.ts';
import { errorBody, noRouteMessage } from './errors.ts';

export async function startWorkerHttp(container: Container, workers: Workers, port: number, host: string) {
  const app = Fastify({ loggerInstance: container.log as FastifyBaseLogger, disableRequestLogging: true, forceCloseConnections: 'idle' });
  registerMetrics(app, container, { openapi: '3.1.0', info: { title: 'evalgate worker', version: '1' }, paths: {} });
  registerHealth(app, container, workers);
  app.setNotFoundHandler((req, reply) => reply.status(404).send(errorBody(noRouteMessage(req.method, req.url))));
  await app.listen({ port, host });
  return app;
}
