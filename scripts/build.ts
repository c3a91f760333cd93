/**
 * `npm run build`: compiles server/, domain/, routers/, jobs/ and entities/ (and
 * what they import) to dist/ with tsconfig.build.json, then copies the files the
 * compiled code reads beside itself at run time (the Redis *.lua scripts) and
 * writes the evaluator pool's worker-thread entry for compiled code (the source
 * one registers tsx, which dist/ does not need).
 *
 * `--if-stale` (what `prestart` runs) builds only when dist/ is missing or a
 * source file, package.json or a tsconfig is newer than the last build.
 *
 * `--out-dir <dir>` builds elsewhere (the build test uses a temporary folder).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['server', 'domain', 'routers', 'jobs', 'entities', 'client'];
const args = process.argv.slice(2);
const outAt = args.indexOf('--out-dir');
const outDir = resolve(root, outAt >= 0 ? (args[outAt + 1] ?? 'dist') : 'dist');
const stamp = join(outDir, '.build-stamp');

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules') yield* files(p);
    } else yield p;
  }
}

function newestSourceMtime(): number {
  let newest = 0;
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.ts']) {
    if (existsSync(join(root, f))) newest = Math.max(newest, statSync(join(root, f)).mtimeMs);
  }
  for (const d of SOURCES) {
    if (!existsSync(join(root, d))) continue;
    for (const f of files(join(root, d))) newest = Math.max(newest, statSync(f).mtimeMs);
  }
  return newest;
}

if (args.includes('--if-stale') && existsSync(stamp) && statSync(stamp).mtimeMs >= newestSourceMtime()) {
  process.exit(0);
}

const started = Date.now();
rmSync(outDir, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', outDir], {
  cwd: root,
  stdio: 'inherit',
});
if (tsc.status !== 0) {
  process.stderr.write(`build: tsc failed (exit ${tsc.status ?? tsc.signal})\n`);
  process.exit(1);
}

// Assets read beside the code with new URL(..., import.meta.url).
let copied = 0;
for (const d of SOURCES) {
  if (!existsSync(join(root, d))) continue;
  for (const f of files(join(root, d))) {
    if (!f.endsWith('.lua')) continue;
    const to = join(outDir, relative(root, f));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(f, to);
    copied++;
  }
}

// The evaluator pool's thread entry (domain/evaluators/evaluator-pool.ts loads ./evaluator-thread.boot.mjs).
writeFileSync(
  join(outDir, 'domain/evaluators/evaluator-thread.boot.mjs'),
  '// Written by scripts/build.ts: the compiled worker-thread entry needs no tsx.\n' +
    "export { score, check } from './evaluator-thread.worker.js';\n",
);

writeFileSync(stamp, `${new Date().toISOString()}\n`);
process.stdout.write(`build: ${relative(root, outDir) || '.'} in ${((Date.now() - started) / 1000).toFixed(1)} s (${copied} assets copied)\n`);
