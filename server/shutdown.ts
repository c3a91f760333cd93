import type { Logger } from './logger.ts';

/**
 * Runs `steps` in order once, on the first SIGTERM/SIGINT: HTTP first (stop
 * accepting), then workers (finish in-flight jobs), then queues, ORM, Redis.
 * A second signal exits at once, and so does a shutdown still running after
 * `hardDeadlineMs` (a step waiting on a dependency that never answers must
 * not keep the process alive: nothing is lost, Postgres and the job locks
 * bring back whatever was in flight).
 */
export function onShutdown(log: Logger, steps: { name: string; run: () => Promise<void> }[], opts: { hardDeadlineMs?: number } = {}): void {
  const hardDeadlineMs = opts.hardDeadlineMs ?? 60_000;
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.error({ hardDeadlineMs }, 'shutdown did not finish in time: exiting now');
      process.exit(1);
    }, hardDeadlineMs).unref();
    void (async () => {
      let code = 0;
      for (const step of steps) {
        try {
          await step.run();
        } catch (err) {
          code = 1;
          log.error({ err, step: step.name }, 'shutdown step failed');
        }
      }
      log.info('stopped');
      process.exit(code);
    })();
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
