import type { Readable } from 'node:stream';

export type NdjsonLine = { lineNo: number; text: string; tooLong?: false } | { lineNo: number; tooLong: true; bytes: number };

/**
 * Splits a byte stream into lines without ever holding more than one line
 * (of at most `maxLineBytes`) in memory; a longer line is reported, not kept.
 * Blank lines are skipped but counted.
 */
export async function* ndjsonLines(stream: Readable, maxLineBytes: number): AsyncGenerator<NdjsonLine> {
  let parts: Buffer[] = [];
  let size = 0;
  let overflow = false;
  let lineNo = 0;
  const finish = function* (): Generator<NdjsonLine> {
    lineNo++;
    if (overflow) yield { lineNo, tooLong: true, bytes: size };
    else if (size > 0) {
      const text = Buffer.concat(parts, size).toString('utf8');
      if (text.trim() !== '') yield { lineNo, text };
    }
    parts = [];
    size = 0;
    overflow = false;
  };
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      const end = nl === -1 ? buf.length : nl;
      const piece = buf.subarray(start, end);
      size += piece.length;
      if (size > maxLineBytes) {
        overflow = true;
        parts = [];
      } else if (!overflow && piece.length > 0) parts.push(piece);
      if (nl === -1) break;
      yield* finish();
      start = nl + 1;
    }
  }
  if (size > 0 || overflow) yield* finish();
}
