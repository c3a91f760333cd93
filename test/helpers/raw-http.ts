/**
 * HTTP over a raw TCP socket, for what fetch cannot do: send headers and
 * stop, declare a body and stall, trickle bytes. Resolves when the server
 * closes the connection (or `giveUpMs` passes: `closed` is then false).
 */
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  /** HTTP status of the answer, 0 if none came. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (rather than the test giving up). */
  closed: boolean;
}

export interface RawOptions {
  /** Written once connected: the request head (and any body bytes) exactly as given. */
  send: string | Buffer;
  /** Then called every `everyMs` with the socket until it returns false (trickling). */
  trickle?: { everyMs: number; write: (socket: Socket, n: number) => boolean };
  giveUpMs?: number;
}

export function rawRequest(port: number, opts: RawOptions): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const done = (closed: boolean) => {
      clearTimeout(giveUp);
      clearInterval(timer);
      socket.destroy();
      resolve({ ...parse(Buffer.concat(chunks).toString('utf8')), closed });
    };
    const giveUp = setTimeout(() => done(false), opts.giveUpMs ?? 30_000);
    socket.on('data', (b) => chunks.push(b));
    socket.on('error', () => undefined);
    socket.on('close', () => done(true));
    socket.on('connect', () => {
      socket.write(opts.send);
      const t = opts.trickle;
      if (t) {
        let n = 0;
        timer = setInterval(() => {
          if (socket.destroyed || !t.write(socket, n++)) clearInterval(timer);
        }, t.everyMs);
      }
    });
  });
}

function parse(text: string): Omit<RawAnswer, 'closed'> {
  const end = text.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/1.1 ') || end < 0) return { status: 0, headers: {}, body: text };
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine?.split(' ')[1]), headers, body: text.slice(end + 4) };
}

/** A request head; `body` bytes, if any, follow it at once. */
export function head(method: string, path: string, headers: Record<string, string | number>, body = ''): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
