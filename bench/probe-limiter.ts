/**
 * The provider limiter (domain/evaluators/llm-judge/provider-limiter.ts) alone,
 * against the machine's Redis: `lanes` concurrent users, in `processes`
 * limiters on separate connections (as separate worker processes would be),
 * each holding its slot `holdMs` per request, under one concurrency limit.
 * Prints requests/s, the ideal (concurrency / holdMs), the highest number of
 * slots held at once (must not exceed the limit), how many requests each
 * connection got, Redis commands per request and the client's CPU per request.
 *
 *   node --import tsx bench/probe-limiter.ts [requests=5000] [concurrency=64] [lanes=128] [holdMs=100] [processes=1]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ProviderLimiter } from '../domain/evaluators/llm-judge/provider-limiter.ts';
import { deleteKeys, REDIS_URL, uniqueName } from '../test/helpers/stack.ts';

const [n = 5_000, concurrency = 64, lanes = 128, holdMs = 100, processes = 1] = process.argv.slice(2).map(Number);
const prefix = uniqueName('probe-limiter');
const admin = new Redis(REDIS_URL);
const conns = Array.from({ length: processes }, () => new Redis(REDIS_URL));
const limiters = conns.map((c) => ProviderLimiter.for(c, prefix, 'p', { concurrency, rpm: 1_000_000, leaseMs: 30_000 }));
const commands = conns.map(() => 0);
conns.forEach((c, i) => {
  const send = c.sendCommand.bind(c);
  c.sendCommand = ((...args: Parameters<typeof send>) => {
    commands[i] = (commands[i] ?? 0) + 1;
    return send(...args);
  }) as typeof c.sendCommand;
});

const controller = new AbortController();
let held = 0;
let maxHeld = 0;
let next = 0;
const perConn = conns.map(() => 0);
const c0 = process.cpuUsage();
const t0 = performance.now();
try {
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      const i = lane % processes;
      const limiter = limiters[i] as ProviderLimiter;
      while (next++ < n) {
        const release = await limiter.acquire(controller.signal);
        held++;
        maxHeld = Math.max(maxHeld, held);
        perConn[i] = (perConn[i] ?? 0) + 1;
        await sleep(holdMs);
        held--;
        await release();
      }
    }),
  );
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const sent = commands.reduce((a, b) => a + b, 0);
  console.log(
    `${n} requests: ${((n / wall) * 1000).toFixed(0)}/s (ideal ${((concurrency / holdMs) * 1000).toFixed(0)}/s), max held ${maxHeld} of ${concurrency}, ` +
      `per connection ${perConn.join('/')}, ${(sent / n).toFixed(2)} Redis commands/request, ${((cpu.user + cpu.system) / n).toFixed(0)} µs client CPU/request`,
  );
  if (maxHeld > concurrency) process.exitCode = 1;
} finally {
  await deleteKeys(admin, `${prefix}:*`);
  for (const c of [admin, ...conns]) c.disconnect();
}
