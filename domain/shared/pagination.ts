/**
 * Opaque keyset cursors. A cursor is the last key of the previous page,
 * base64url-encoded with a version tag so its format can change; clients
 * only pass it back. Lists never use OFFSET, so page N costs the same as page 1.
 * The zod side (cursor, limit, page) is in domain/shared/common.schema.ts.
 *
 * A cursor is client input like any other: whatever it decodes to must be
 * refused with a 400 naming `cursor` before it reaches SQL (a key of the wrong
 * type there is a cast error, i.e. a 500). A list may tag its cursors with its
 * name so that another list's cursor is refused rather than read as a position.
 */
import { DomainError } from './errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Keys are dataset version numbers: PostgreSQL `int`. */
const MAX_NUMBER_KEY = 2_147_483_647;

export function encodeCursor(key: string | number, list?: string): string {
  return Buffer.from(JSON.stringify(list === undefined ? { v: 1, k: key } : { v: 1, l: list, k: key })).toString('base64url');
}

const invalid = () => new DomainError('BAD_REQUEST', 'cursor: invalid cursor; pass back next_cursor exactly as received, to the list that returned it');

/** `string` keys are UUIDs (every string-keyed list orders by a uuid column); `number` keys are non-negative ints. */
export function decodeCursor<K extends 'string' | 'number'>(
  cursor: string | undefined,
  kind: K,
  list?: string,
): (K extends 'string' ? string : number) | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid();
  const { v, k, l } = parsed as { v?: unknown; k?: unknown; l?: unknown };
  if (v !== 1 || l !== list) throw invalid();
  if (kind === 'string' && typeof k === 'string' && UUID.test(k)) return k as K extends 'string' ? string : number;
  if (kind === 'number' && typeof k === 'number' && Number.isSafeInteger(k) && k >= 0 && k <= MAX_NUMBER_KEY) return k as K extends 'string' ? string : number;
  throw invalid();
}

export interface PageOptions {
  /** Tag of the list, checked by decodeCursor. */
  list?: string;
  /** The rows were cut short (by bytes) before `limit`: there is a next page even with `limit` rows or fewer. */
  truncated?: boolean;
}

/** Given `limit + 1` rows (or fewer, `truncated`), the page and the cursor of its last row. */
export function toPage<R, D>(
  rows: R[],
  limit: number,
  key: (r: R) => string | number,
  map: (r: R) => D,
  opts: PageOptions = {},
): { data: D[]; next_cursor: string | null } {
  const more = rows.length > limit || (opts.truncated === true && rows.length > 0);
  const pageRows = rows.length > limit ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return { data: pageRows.map(map), next_cursor: more && last !== undefined ? encodeCursor(key(last), opts.list) : null };
}

/**
 * SQL for the bytes of some JSON (or text) columns as a list answers them.
 * jsonb's text form has a space after `:` and `,`, so it over- rather than
 * under-counts the compact JSON sent.
 */
export const jsonBytesSql = (...columns: string[]) => `(${columns.map((c) => `coalesce(octet_length(${c}::text), 4)`).join(' + ')})`;

/** What a listed row costs beyond its JSON values: ids, timestamps, key names, punctuation. */
export const ROW_OVERHEAD_BYTES = 256;

/**
 * For a query that probes `limit + 1` keys with their sizes and returns the
 * prefix within the byte bound, each row carrying `page_rows` (how many were
 * probed): the rows without it, `truncated` when the bound left some out.
 */
export function cutRows<R extends { page_rows: number }>(rows: R[]): { rows: Omit<R, 'page_rows'>[]; truncated: boolean } {
  const probed = rows[0]?.page_rows ?? 0;
  return { rows: rows.map(({ page_rows: _, ...r }) => r), truncated: rows.length < probed };
}
