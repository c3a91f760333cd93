/**
 * A real local HTTP server that receives webhooks: records every request
 * (headers and raw body) and answers as the test says, by request number.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './stack.ts';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** `hang`: never answer (the sender's timeout must fire). */
export type Answer = { status: number; headers?: Record<string, string> } | 'hang';

export interface Receiver {
  url: string;
  requests: Received[];
  /** Requests to one path, in arrival order. */
  at(path: string): Received[];
  /** Waits until `path` has received at least `n` requests. */
  waitFor(path: string, n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(answer: (path: string, index: number) => Answer = () => ({ status: 200 })): Promise<Receiver> {
  const requests: Received[] = [];
  const hanging = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0] as string;
      const index = requests.filter((r) => r.path === path).length;
      requests.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const a = answer(path, index);
      if (a === 'hang') {
        hanging.add(() => res.destroy());
        return;
      }
      res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const at = (path: string) => requests.filter((r) => r.path === path);
  return {
    url,
    requests,
    at,
    waitFor: (path, n, timeoutMs = 30_000) =>
      waitFor(async () => (at(path).length >= n ? at(path) : null), { timeoutMs, intervalMs: 20, what: `${n} webhook request(s) to ${path}` }),
    async close() {
      for (const h of hanging) h();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
