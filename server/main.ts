/**
 * Process entry: `tsx server/main.ts [all|api|worker]`.
 * all    — API and workers in one process (`npm start`)
 * api    — HTTP only (`npm run start:api`)
 * worker — BullMQ workers only (`npm run start:worker`)
 */
import type { Workers } from './workers.ts';
import { createContainer } from './container.ts';
import { EnvError, loadEnv } from './env.ts';
import { configuredSecrets, createLogger } from './logger.ts';
import { onShutdown } from './shutdown.ts';

type Mode = 'all' | 'api' | 'worker';

async function main(mode: Mode): Promise<void> {
  let env;
  try {
    env = loadEnv();
  } catch (err) {
    if (err instanceof EnvError) {
      process.stderr.write(`evalgate: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger(env.LOG_LEVEL, undefined, configuredSecrets(env)).child({ mode });
  const container = await createContainer(env, { log });
  await warnOnEvictionPolicy(container);

  // the API, or a worker's small HTTP server; either is closed first at shutdown
  let app: { close(): Promise<unknown> } | undefined;
  let workers: Workers | undefined;
  // Each mode loads only its own half: a worker never loads the HTTP stack (Fastify plugins, routers,
  // trpc-to-openapi, the OpenAPI document), an API process never loads the job processors (peak RSS).
  if (mode !== 'api') {
    const { startWorkers } = await import('./workers.ts');
    workers = await startWorkers(container);
  }
  if (mode !== 'worker') {
    const { buildApp } = await import('./http.ts');
    const api = await buildApp(container, { workers });
    await api.listen({ port: env.PORT, host: env.HOST });
    app = api;
  } else if (workers && env.WORKER_HTTP_PORT !== undefined) {
    const { startWorkerHttp } = await import('./worker-http.ts');
    app = await startWorkerHttp(container, workers, env.WORKER_HTTP_PORT, env.HOST);
  }

  onShutdown(log, [
    { name: 'http', run: async () => void (await app?.close()) },
    { name: 'workers', run: async () => void (await workers?.close()) },
    { name: 'container', run: () => container.close() },
    // past the workers' own deadline plus the bounded closes, a stuck step ends the process anyway
  ], { hardDeadlineMs: env.SHUTDOWN_TIMEOUT_MS + 30_000 });
}

/** BullMQ loses jobs under any eviction policy but noeviction; say so loudly at start. */
async function warnOnEvictionPolicy(container: Awaited<ReturnType<typeof createContainer>>): Promise<void> {
  try {
    const res = (await container.redis.config('GET', 'maxmemory-policy')) as string[];
    const policy = res[1];
    if (policy && policy !== 'noeviction') {
      container.log.warn({ policy }, `Redis maxmemory-policy is "${policy}"; BullMQ needs "noeviction" or jobs can be evicted`);
    }
  } catch (err) {
    container.log.warn({ err: (err as Error).message }, 'could not read Redis maxmemory-policy');
  }
}

const mode = (process.argv[2] ?? 'all') as Mode;
if (!['all', 'api', 'worker'].includes(mode)) {
  process.stderr.write(`usage: main.ts [all|api|worker]\n`);
  process.exit(2);
}
main(mode).catch((err: unknown) => {
  process.stderr.write(`evalgate: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
