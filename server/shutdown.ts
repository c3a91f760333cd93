import closeWithGrace from 'close-with-grace';
import type { Logger } from './logger.ts';

/**
 * Only SIGTERM and SIGINT start a shutdown: the other signals keep Node's own
 * behaviour, and an uncaught error still ends the process at once instead of
 * waiting on closes that may depend on what just failed.
 */
const NOT_SHUTDOWN: closeWithGrace.AllEvents[] = [
  'SIGHUP', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGUSR2',
  'uncaughtException', 'unhandledRejection', 'beforeExit',
];

class ShutdownStepFailed extends Error {}

/**
 * Runs `steps` in order once, on the first SIGTERM/SIGINT: HTTP first (stop
 * accepting), then workers (finish in-flight jobs), then queues, ORM, Redis.
 * A failing step is logged and the next one still runs; the exit code is 1 if
 * any failed. A second signal exits at once, and so does a shutdown still
 * running after `hardDeadlineMs` (a step waiting on a dependency that never
 * answers must not keep the process alive: nothing is lost, Postgres and the
 * job locks bring back whatever was in flight).
 */
export function onShutdown(log: Logger, steps: { name: string; run: () => Promise<void> }[], opts: { hardDeadlineMs?: number } = {}): void {
  const hardDeadlineMs = opts.hardDeadlineMs ?? 60_000;
  closeWithGrace(
    {
      delay: hardDeadlineMs,
      // every message is logged here through pino; the library would print to the console
      logger: false,
      skip: NOT_SHUTDOWN,
      onSecondSignal: (signal) => log.warn({ signal }, 'second signal: exiting now'),
      onTimeout: () => log.error({ hardDeadlineMs }, 'shutdown did not finish in time: exiting now'),
    },
    async ({ signal }) => {
      log.info({ signal }, 'shutting down');
      let failed = false;
      for (const step of steps) {
        try {
          await step.run();
        } catch (err) {
          failed = true;
          log.error({ err, step: step.name }, 'shutdown step failed');
        }
      }
      log.info('stopped');
      // close-with-grace exits 1 when the callback rejects (and logs nothing with logger: false)
      if (failed) throw new ShutdownStepFailed('a shutdown step failed');
    },
  );
}
