/**
 * bull-board at /admin/queues over HTTP: absent without credentials, every
 * path under it (pages, API, static assets, unknown paths) behind HTTP Basic,
 * every queue of the container listed, and read-only mode refusing changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../server/env.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

const USER = 'ops';
const PASSWORD = 'correct horse battery staple';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const ADMIN = basic(USER, PASSWORD);
const BOARD_ENV = { EVALGATE_BOARD_USER: USER, EVALGATE_BOARD_PASSWORD: PASSWORD };

async function get(s: Stack, path: string, authorization?: string, method = 'GET') {
  const res = await fetch(`${s.baseUrl}${path}`, { method, headers: authorization ? { authorization } : {} });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

describe('board configuration', () => {
  it('needs the user and the password together', () => {
    expect(() => loadEnv({ EVALGATE_BOARD_USER: 'ops' })).toThrow(/EVALGATE_BOARD_USER and EVALGATE_BOARD_PASSWORD go together/);
    expect(() => loadEnv({ EVALGATE_BOARD_PASSWORD: 'x' })).toThrow(/go together/);
    expect(loadEnv({ EVALGATE_BOARD_READONLY: 'false' }).EVALGATE_BOARD_READONLY).toBe(false);
    expect(loadEnv({ EVALGATE_BOARD_READONLY: 'true' }).EVALGATE_BOARD_READONLY).toBe(true);
    expect(() => loadEnv({ EVALGATE_BOARD_READONLY: 'maybe' })).toThrow(/EVALGATE_BOARD_READONLY/);
  });
});

describe('without board credentials', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
  });
  afterAll(async () => s?.close());

  it('does not mount the board at all', async () => {
    for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
      const r = await get(s, path, ADMIN);
      expect(r.status, path).toBe(404);
      expect(JSON.parse(r.text)).toEqual({ error: `no route for GET ${path}` });
    }
  });
});

describe('with board credentials', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ env: BOARD_ENV });
  });
  afterAll(async () => s?.close());

  it('challenges every path under /admin/queues without the right credentials', async () => {
    const page = await get(s, '/admin/queues', ADMIN);
    const asset = /static\/js\/main\.[0-9a-f]+\.js/.exec(page.text)?.[0];
    expect(asset).toBeDefined();
    const paths = ['/admin/queues', '/admin/queues/', '/admin/queues/queue/run-chunk', '/admin/queues/api/queues', `/admin/queues/${asset}`, '/admin/queues/no/such/page'];
    const wrong = [undefined, basic(USER, 'wrong'), basic('someone', PASSWORD), basic(USER, `${PASSWORD}x`), 'Basic not-base64!', `Bearer ${PASSWORD}`];
    for (const path of paths) {
      for (const authorization of wrong) {
        const r = await get(s, path, authorization);
        expect(r.status, `${path} with ${authorization}`).toBe(401);
        expect(r.headers.get('www-authenticate')).toBe('Basic realm="evalgate board", charset="UTF-8"');
        expect(JSON.parse(r.text)).toEqual({ error: 'the board needs admin credentials (HTTP Basic)' });
      }
    }
    // A password may hold a colon; only the first one separates the user.
    const colon = await startStack({ env: { EVALGATE_BOARD_USER: USER, EVALGATE_BOARD_PASSWORD: 'a:b:c' } });
    try {
      expect((await get(colon, '/admin/queues/api/queues', basic(USER, 'a:b:c'))).status).toBe(200);
      expect((await get(colon, '/admin/queues/api/queues', basic(USER, 'a:b'))).status).toBe(401);
    } finally {
      await colon.close();
    }
  });

  it('serves the page, its assets and every queue of the container to the admin', async () => {
    const page = await get(s, '/admin/queues', ADMIN);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.text).toContain('<base href="/admin/queues/"');
    for (const asset of page.text.match(/static\/(js|css)\/[\w.-]+\.(js|css)/g) ?? []) {
      const r = await get(s, `/admin/queues/${asset}`, ADMIN);
      expect(r.status, asset).toBe(200);
    }
    const api = await get(s, '/admin/queues/api/queues', ADMIN);
    expect(api.status).toBe(200);
    const names = (JSON.parse(api.text) as { queues: { name: string; readOnlyMode: boolean }[] }).queues.map((q) => q.name).sort();
    // Whatever queues.all() holds, including queues added after the board was written.
    expect(names).toEqual(s.container.queues.all().map((q) => q.name).sort());
    expect(names).toEqual(expect.arrayContaining(['reconcile', 'run-chunk', 'run-start']));
    const unknown = await get(s, '/admin/queues/no/such/page', ADMIN);
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text)).toEqual({ error: 'no route for GET /admin/queues/no/such/page' });
  });

  it('lets the admin change a queue when not read-only', async () => {
    const r = await get(s, '/admin/queues/api/queues/run-start/pause', ADMIN, 'PUT');
    expect(r.status, r.text).toBe(200);
    expect(await s.container.queues.runStart.isPaused()).toBe(true);
    await s.container.queues.runStart.resume();
  });
});

describe('read-only board', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ env: { ...BOARD_ENV, EVALGATE_BOARD_READONLY: 'true' } });
  });
  afterAll(async () => s?.close());

  it('shows the queues but refuses to change them', async () => {
    const api = await get(s, '/admin/queues/api/queues', ADMIN);
    expect(api.status).toBe(200);
    const queues = (JSON.parse(api.text) as { queues: { name: string; readOnlyMode: boolean }[] }).queues;
    expect(queues).toHaveLength(s.container.queues.all().length);
    expect(queues.every((q) => q.readOnlyMode)).toBe(true);
    const r = await get(s, '/admin/queues/api/queues/run-start/pause', ADMIN, 'PUT');
    expect(r.status).toBe(405);
    expect(await s.container.queues.runStart.isPaused()).toBe(false);
    const all = await get(s, '/admin/queues/api/queues/pause', ADMIN, 'PUT');
    expect(all.status).toBeLessThan(500);
    for (const q of s.container.queues.all()) expect(await q.isPaused(), q.name).toBe(false);
  });
});
