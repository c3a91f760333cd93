/**
 * What `npm pack` would publish: only the code and its documents, never a
 * demo key file, a Redis dump, an .env or the tests (package.json `files`).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('npm pack', () => {
  it('ships only the allowlisted paths and nothing that can hold a secret', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    const paths = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(paths).toContain('server/cli.ts');
    const allowed = /^(client|entities|domain|jobs|routers|server|contract)\/|^(openapi\.json|README\.md|RELIABILITY\.md|package\.json)$/;
    expect(paths.filter((p) => !allowed.test(p))).toEqual([]);
    expect(paths.filter((p) => /(^|\/)(demo\.json|\.env[^/]*|[^/]*\.rdb)$/.test(p))).toEqual([]);
  });
});
