/**
 * The benchmark harness cannot rot: `npm run bench -- --smoke` (tiny sizes,
 * one round, every part) runs as a child process, exits 0 and prints its
 * tables. No assertion on any timing: this is about the harness, not speed.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const out = join(tmpdir(), `evalgate-bench-smoke-test-${process.pid}.md`);

afterAll(() => rmSync(out, { force: true }));

it('npm run bench -- --smoke exits 0 and prints every table', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', `--out=${out}`], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code, `stderr:\n${stderr.slice(-4000)}`).toBe(0);
  for (const heading of ['## Machine', '## Targets', '## 1. Schedule endpoint', '## 2. Run pipeline', '## 3. Scale curve', '## 4. LLM judge', '## 5. Horizontal: worker processes', '## 6. Generation (chat_completion target)']) {
    expect(stdout).toContain(heading);
  }
  expect(stdout).toMatch(/\| figure +\| measured +\| baseline +\| ratio +\| target +\| verdict +\|/);
  expect(stdout).toContain('baseline (b): plain Fastify + pg + BullMQ');
  expect(readFileSync(out, 'utf8')).toContain('SMOKE run');
}, 300_000);
