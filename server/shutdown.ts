import type { Logger } from './logger.ts';

/**
 * Runs `steps` in order once, on the first SIGTERM/SIGINT: HTTP first (stop
 * accepting), then workers (finish in-flight jobs), then queues, ORM, Redis.
 * A second signal exits at once.
 */
export function onShutdown(log: Logger, steps: { name: string; run: () => Promise<void> }[]): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
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
