/**
 * Baseline (a) of the pipeline bench: a plain BullMQ Worker whose processor
 * does nothing, one job per item. The parent (over IPC) says how many jobs a
 * round holds; this process answers when the first and the last completed.
 * Env: REDIS_URL, EVALGATE_QUEUE_PREFIX, QUEUE, CONCURRENCY.
 */
import { Worker } from 'bullmq';

const env = process.env;
const u = new URL(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
let expected = Number.POSITIVE_INFINITY;
let done = 0;
let firstAt = 0;

const worker = new Worker(env.QUEUE as string, async () => undefined, {
  connection: { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null },
  prefix: env.EVALGATE_QUEUE_PREFIX,
  concurrency: Number(env.CONCURRENCY ?? 50),
});
worker.on('completed', () => {
  done++;
  if (done === 1) firstAt = Date.now();
  if (done === expected) process.send?.({ type: 'done', firstAt, lastAt: Date.now(), count: done });
});
worker.on('error', (err) => process.stderr.write(`worker error: ${err.message}\n`));

process.on('message', (m: { type: string; expect: number }) => {
  if (m.type === 'expect') {
    expected = m.expect;
    done = 0;
    firstAt = 0;
    process.send?.({ type: 'ready' });
  }
});
await worker.waitUntilReady();
process.send?.({ type: 'started' });

const stop = () => void worker.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
