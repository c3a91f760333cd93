/**
 * `npm run bench:startup`: the CLI's start time and the `all` server's RSS right
 * after start, from the sources (node --import tsx) and from the build (dist/,
 * built first if stale). CLI: `tenants:list` against a migrated database, median
 * of N runs, tsx and compiled interleaved. RSS: VmRSS of the `all` process as soon
 * as /healthz answers, median of 3 starts each, interleaved. Prints a Markdown table.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dropDatabase } from '../server/db.ts';
import { testEnv } from '../test/helpers/stack.ts';
import { startEvalgateApi } from '../test/helpers/processes.ts';
import { rssMb } from './lib/procs.ts';
import { median } from './lib/stats.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const N = Number(process.env.RUNS ?? 11);
const env = testEnv({ LOG_LEVEL: 'warn' });
const childEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env };


function timeCli(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(process.execPath, [...args, 'tenants:list'], { cwd: ROOT, env: childEnv, stdio: 'ignore' });
    c.on('exit', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`cli exit ${code}`))));
  });
}

async function rssAfterStart(compiled: boolean): Promise<number> {
  const { proc } = await startEvalgateApi({ ...env, LOG_LEVEL: 'info' }, { mode: 'all', ...(compiled ? { compiledMain: 'dist/server/main.js' } : {}) });
  const mb = rssMb(proc.child.pid as number);
  proc.kill('SIGTERM');
  await proc.exited;
  return mb;
}

const b = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts', '--if-stale'], { cwd: ROOT, stdio: 'inherit' });
if (b.status !== 0) throw new Error('build failed');
const TSX = ['--import', 'tsx', 'server/cli.ts'];
const JS = ['dist/server/cli.js'];
try {
  spawnSync(process.execPath, [...TSX, 'migrate'], { cwd: ROOT, env: childEnv, stdio: 'ignore' });
  await timeCli(TSX); // warms the page cache for both
  await timeCli(JS);
  const cli = { tsx: [] as number[], js: [] as number[] };
  for (let i = 0; i < N; i++) {
    cli.tsx.push(await timeCli(TSX));
    cli.js.push(await timeCli(JS));
  }
  const rss = { tsx: [] as number[], js: [] as number[] };
  for (let i = 0; i < 3; i++) {
    rss.tsx.push(await rssAfterStart(false));
    rss.js.push(await rssAfterStart(true));
  }
  const f = (x: number) => x.toFixed(0);
  console.log(`| measure | tsx (sources) | compiled (dist/) |\n|---|---:|---:|`);
  console.log(`| CLI \`tenants:list\`, wall ms, median of ${N} (min–max) | ${f(median(cli.tsx))} (${f(Math.min(...cli.tsx))}–${f(Math.max(...cli.tsx))}) | ${f(median(cli.js))} (${f(Math.min(...cli.js))}–${f(Math.max(...cli.js))}) |`);
  console.log(`| \`all\` RSS when /healthz first answers, MB, median of 3 | ${f(median(rss.tsx))} | ${f(median(rss.js))} |`);
} finally {
  await dropDatabase(env.DATABASE_URL as string);
}
