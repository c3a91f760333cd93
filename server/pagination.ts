/**
 * Opaque keyset cursors. A cursor is the last key of the previous page,
 * base64url-encoded with a version tag so its format can change; clients
 * only pass it back. Lists never use OFFSET, so page N costs the same as page 1.
 * The zod side (cursor, limit, page) is in routers/shared/common.schema.ts.
 */
import { DomainError } from './errors.ts';

export function encodeCursor(key: string | number): string {
  return Buffer.from(JSON.stringify({ v: 1, k: key })).toString('base64url');
}

export function decodeCursor<K extends 'string' | 'number'>(cursor: string | undefined, kind: K): (K extends 'string' ? string : number) | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { v?: unknown; k?: unknown };
    if (parsed.v === 1 && typeof parsed.k === kind) return parsed.k as K extends 'string' ? string : number;
  } catch {
    // fall through
  }
  throw new DomainError('BAD_REQUEST', 'invalid cursor: pass back next_cursor exactly as received');
}

/** Given `limit + 1` rows, the page and the cursor of its last row. */
export function toPage<R, D>(rows: R[], limit: number, key: (r: R) => string | number, map: (r: R) => D): { data: D[]; next_cursor: string | null } {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return { data: pageRows.map(map), next_cursor: more && last !== undefined ? encodeCursor(key(last)) : null };
}
