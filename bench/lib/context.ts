/**
 * The bench's own stack: a fresh PostgreSQL database and a fresh BullMQ
 * prefix on the machine's shared services (test/helpers/stack.ts), a `pg`
 * pool for direct measurement queries, a fake LLM provider, and helpers to
 * start evalgate processes wired to all of that. close() drops the database
 * and deletes every key under the prefix.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startFakeLlm, type FakeLlm } from '../../test/helpers/fake-llm.ts';
import { freePort } from '../../test/helpers/processes.ts';
import { startStack, uniqueName, type Stack } from '../../test/helpers/stack.ts';
import { ROOT, spawnTs, waitHttp, type Proc } from './procs.ts';

export interface BenchOptions {
  smoke: boolean;
  full: boolean;
  /** measured rounds per figure (the median is reported) */
  rounds: number;
  /** directory for V8 CPU profiles of the evalgate processes, when profiling */
  cpuProfDir?: string;
  only: Set<string> | null;
  /** env of the LLM-judge worker on top of its defaults (`--judge-env=K=V,…`), for experiments */
  judgeEnv: Record<string, string>;
  /** env of the generation part's worker on top of its defaults (`--gen-env=K=V,…`), for experiments */
  genEnv: Record<string, string>;
}

export interface Bench {
  opts: BenchOptions;
  stack: Stack;
  pg: pg.Pool;
  fake: FakeLlm;
  /** smoke mode: worker processes the scale part leaves running for the judge part (fewer process starts) */
  sharedWorkers: Proc[];
  /** env every evalgate process of the bench gets */
  evalgateEnv(extra?: Record<string, string>): Record<string, string>;
  startApi(name: string, extra?: Record<string, string>): Promise<{ proc: Proc; base: string }>;
  startWorker(name: string, extra?: Record<string, string>): Proc;
  /** node flags for a process named `name`: those of `npm run start:api|worker`, and a CPU profile when asked */
  nodeArgs(name: string, mode: 'api' | 'worker'): string[];
  log(line: string): void;
  close(): Promise<void>;
}

/** Provider settings for the LLM-judge part: concurrency 64 against the fake provider. */
export const JUDGE_PROVIDER = 'fake';
export const JUDGE_CONCURRENCY = 64;
export const JUDGE_LATENCY_MS = 100;

export async function openBench(opts: BenchOptions): Promise<Bench> {
  const stack = await startStack({
    workers: false,
    http: false,
    env: {
      DATABASE_URL: `${process.env.TEST_DATABASE_BASE_URL ?? 'postgres://postgres@127.0.0.1:5432'}/${uniqueName('evalgate_bench')}`,
      EVALGATE_QUEUE_PREFIX: uniqueName('egbench'),
      LOG_LEVEL: 'silent',
    },
  });
  const pool = new pg.Pool({ connectionString: stack.env.DATABASE_URL, max: 8 });
  const fake = await startFakeLlm({ latencyMs: JUDGE_LATENCY_MS });
  const providers = JSON.stringify({
    [JUDGE_PROVIDER]: { base_url: fake.url, api_key: 'sk-bench', concurrency: JUDGE_CONCURRENCY, rpm: 1_000_000, timeout_ms: 30_000, max_attempts: 4 },
  });
  if (opts.cpuProfDir) mkdirSync(opts.cpuProfDir, { recursive: true });

  const bench: Bench = {
    opts,
    stack,
    pg: pool,
    fake,
    sharedWorkers: [],
    evalgateEnv: (extra = {}) => ({
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      DATABASE_URL: stack.env.DATABASE_URL,
      REDIS_URL: stack.env.REDIS_URL,
      EVALGATE_QUEUE_PREFIX: stack.env.EVALGATE_QUEUE_PREFIX,
      DATABASE_POOL_MAX: '20', // the default, also given to baseline (b)
      // the schedule bench must measure the path, not the limits
      RATE_LIMIT_TENANT_WRITES_PER_MINUTE: '10000000',
      RATE_LIMIT_KEY_WRITES_PER_MINUTE: '10000000',
      MAX_ACTIVE_RUNS_PER_TENANT: '1000000',
      EVALGATE_PROVIDERS: providers,
      ...extra,
    }),
    nodeArgs: (name, mode) => [
      // the bench measures what `npm start` runs (its heap limit above all: peak RSS depends on it)
      ...startScriptNodeFlags(mode),
      // one directory per process: node writes one profile per thread (tsx's loader hooks run in a thread of their own)
      ...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${join(opts.cpuProfDir, name)}`] : []),
    ],
    async startApi(name, extra = {}) {
      const port = await freePort();
      const proc = spawnTs(name, 'server/main.ts', ['api'], { env: bench.evalgateEnv({ PORT: String(port), ...extra }), nodeArgs: bench.nodeArgs(name, 'api') });
      const base = `http://127.0.0.1:${port}`;
      await waitHttp(`${base}/healthz`, proc);
      return { proc, base };
    },
    startWorker(name, extra = {}) {
      return spawnTs(name, 'server/main.ts', ['worker'], { env: bench.evalgateEnv(extra), nodeArgs: bench.nodeArgs(name, 'worker') });
    },
    log(line) {
      process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
    },
    async close() {
      await pool.end().catch(() => undefined);
      await fake.close().catch(() => undefined);
      await stack.close();
    },
  };
  return bench;
}

/**
 * The node flags of `npm run start:<mode>` in package.json (`node <flags> dist/server/main.js <mode>`),
 * e.g. the heap limit, so that bench processes (which run the sources through tsx) get the production ones.
 */
export function startScriptNodeFlags(mode: 'api' | 'worker'): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const words = (pkg.scripts?.[`start:${mode}`] ?? '').trim().split(/\s+/);
  const end = words.findIndex((w, i) => i > 0 && !w.startsWith('-'));
  if (words[0] !== 'node' || end < 0) throw new Error(`package.json "start:${mode}" is not "node [flags] <main script> ${mode}"`);
  return words.slice(1, end);
}

export function profileDir(): string {
  const dir = join('/tmp', `evalgate-bench-profiles-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}
