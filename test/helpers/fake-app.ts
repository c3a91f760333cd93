/**
 * A fake application behind the `http` target: a real local HTTP server whose
 * behaviour each test sets (latency, 5xx bursts, a share of 429s or a burst of
 * them with Retry-After, hangs, non-JSON or huge answers, 401, an answer that
 * echoes the request's headers). It answers `{"answer": <the body's question
 * upper-cased>, "echo": <the body>}` and logs every request it saw.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeAppBehavior {
  latencyMs: number;
  /** the next N requests answer 500 */
  fail5xxNext: number;
  /** the next N requests answer 429 with Retry-After */
  rate429Next: number;
  /** share of requests answered 429 (deterministic: by request number) */
  rate429: number;
  /** Retry-After of a 429: seconds, or an HTTP date when `retryAfterDate` */
  retryAfterSeconds: number;
  retryAfterDate: boolean;
  /** the next N requests never answer (until the client gives up) */
  hangNext: number;
  /**
   * ok: `{"answer", "echo"}`; text: plain text; garbage: cut-off JSON; huge: a 9 MiB answer with its
   * content-length; huge_chunked: the same, chunked (no length declared); echo_headers: the request's
   * headers as the answer; redirect: 302 to /followed on this server; trickle: the headers, then a
   * byte every 50 ms, never the end
   */
  answer: 'ok' | 'text' | 'garbage' | 'huge' | 'huge_chunked' | 'echo_headers' | 'redirect' | 'trickle';
  /** 401, quoting the authorization header it was sent */
  unauthorized: boolean;
}

export interface FakeAppRequest {
  at: number;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** the body parsed (undefined when it is not JSON) */
  json: unknown;
  status: number | null;
}

export interface FakeApp {
  /** http://127.0.0.1:<port>/generate */
  url: string;
  port: number;
  behavior: FakeAppBehavior;
  /** every request, in arrival order (status null while it is held) */
  requests: FakeAppRequest[];
  inFlight: number;
  reset(b?: Partial<FakeAppBehavior>): void;
  close(): Promise<void>;
}

const DEFAULTS: FakeAppBehavior = {
  latencyMs: 0,
  fail5xxNext: 0,
  rate429Next: 0,
  rate429: 0,
  retryAfterSeconds: 0,
  retryAfterDate: false,
  hangNext: 0,
  answer: 'ok',
  unauthorized: false,
};

function parse(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

/** What the application answers: the question (a string, or `input.question`) upper-cased. */
function answerFor(json: unknown): string {
  const j = json as { question?: unknown; input?: { question?: unknown } } | null | undefined;
  const q = j?.question ?? j?.input?.question ?? '';
  return (typeof q === 'string' ? q : JSON.stringify(q)).toUpperCase();
}

export async function startFakeApp(initial: Partial<FakeAppBehavior> = {}): Promise<FakeApp> {
  const fake = { behavior: { ...DEFAULTS, ...initial }, requests: [], inFlight: 0 } as unknown as FakeApp;
  const hanging = new Set<ServerResponse>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const b = fake.behavior;
    let body = '';
    for await (const chunk of req) body += chunk;
    const entry: FakeAppRequest = { at: Date.now(), method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json: parse(body), status: null };
    fake.requests.push(entry);
    const n = fake.requests.length;
    fake.inFlight++;
    let open = true;
    res.on('close', () => {
      if (open) fake.inFlight--;
      open = false;
      hanging.delete(res);
    });
    const done = (status: number, payload: string | Buffer, headers: Record<string, string> = {}) => {
      entry.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(payload);
    };
    if (b.latencyMs > 0) await new Promise((r) => setTimeout(r, b.latencyMs));
    if (b.hangNext > 0) {
      b.hangNext--;
      hanging.add(res);
      return;
    }
    if (b.unauthorized) return done(401, JSON.stringify({ error: `bad credentials: ${String(req.headers.authorization)}` }));
    if (b.fail5xxNext > 0) {
      b.fail5xxNext--;
      return done(500, JSON.stringify({ error: 'the application exploded' }));
    }
    if (b.rate429Next > 0 || (b.rate429 > 0 && n % 100 < b.rate429 * 100)) {
      if (b.rate429Next > 0) b.rate429Next--;
      const retryAfter = b.retryAfterDate ? new Date(Date.now() + b.retryAfterSeconds * 1000).toUTCString() : String(b.retryAfterSeconds);
      return done(429, JSON.stringify({ error: 'slow down' }), { 'retry-after': retryAfter });
    }
    switch (b.answer) {
      case 'ok':
        return done(200, JSON.stringify({ answer: answerFor(entry.json), echo: entry.json ?? null }));
      case 'text':
        return done(200, `plain ${answerFor(entry.json)}`, { 'content-type': 'text/plain' });
      case 'garbage':
        return done(200, '{"answer": "cut of');
      case 'huge':
        return done(200, Buffer.alloc(9 * 1024 * 1024, 'x'));
      case 'huge_chunked': {
        entry.status = 200;
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 'y');
        for (let i = 0; i < 144 && !res.destroyed; i++) {
          if (!res.write(chunk)) {
            await new Promise<void>((r) => {
              const go = () => {
                res.off('drain', go).off('close', go);
                r();
              };
              res.on('drain', go).on('close', go);
            });
          }
        }
        return void res.end();
      }
      case 'trickle': {
        entry.status = 200;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"answer": "');
        const t = setInterval(() => res.write('.'), 50);
        res.on('close', () => clearInterval(t));
        return;
      }
      case 'redirect':
        return done(302, '{}', { location: '/followed' });
      case 'echo_headers':
        return done(200, JSON.stringify({ answer: req.headers }));
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}/generate`;
  fake.reset = (b = {}) => {
    fake.behavior = { ...DEFAULTS, ...b };
    fake.requests = [];
  };
  fake.close = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return fake;
}
