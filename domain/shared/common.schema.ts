/** Schemas every feature shares: ids, timestamps, list paging, strings and JSON Postgres can store. Imports only zod. */
import { z } from 'zod';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 1_000;

export const uuid = () => z.uuid({ error: 'must be a UUID' });
export const dateTime = () => z.iso.datetime({ offset: true });

/**
 * Why a string cannot be stored, or null. PostgreSQL text and jsonb refuse
 * U+0000, and jsonb refuses a lone UTF-16 surrogate (`\ud800` alone): left to
 * the database, either comes back as a 500. They are refused at the edge
 * instead, with the field named, rather than silently rewritten.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function unsafeStringProblem(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain NUL characters (\\u0000)';
  if (LONE_SURROGATE.test(s)) return 'must not contain lone UTF-16 surrogates (e.g. \\ud800 alone)';
  return null;
}

/** A string PostgreSQL can store as text or inside jsonb. Chain `.trim()`, `.min()`, `.max()` before calling. */
export const safe = <T extends z.ZodString>(s: T): T =>
  s.superRefine((v, ctx) => {
    const problem = unsafeStringProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }) as T;

export const safeString = () => safe(z.string());

/**
 * The path and problem of the first string (key or value, at any depth) of a
 * JSON value that PostgreSQL cannot store, or null. Iterative, so a deep value
 * cannot overflow the stack; callers bound depth and size separately.
 */
export function unsafeJsonProblem(value: unknown): { path: (string | number)[]; message: string } | null {
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: value, path: [] }];
  while (stack.length > 0) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'string') {
      const problem = unsafeStringProblem(v);
      if (problem) return { path, message: problem };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: [...path, i] });
    } else if (v !== null && typeof v === 'object') {
      for (const [k, e] of Object.entries(v)) {
        const problem = unsafeStringProblem(k);
        if (problem) return { path: [...path, k], message: `key ${problem}` };
        stack.push({ v: e, path: [...path, k] });
      }
    }
  }
  return null;
}

/** Adds an issue, at the offending path under `base`, when `value` holds a string PostgreSQL cannot store. */
export function checkSafeJson(value: unknown, ctx: z.core.$RefinementCtx, base: (string | number)[] = []): void {
  const problem = unsafeJsonProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', path: [...base, ...problem.path], message: problem.message });
}

/** A schema that also refuses JSON strings (keys and values, at any depth) PostgreSQL cannot store. */
export const safeJson = <T extends z.ZodType>(schema: T): T => schema.superRefine((v, ctx) => checkSafeJson(v, ctx)) as unknown as T;

export const cursor = safeString().max(512).optional().describe('Opaque cursor from the previous page\'s next_cursor');
export const limit = z.coerce
  .number()
  .int()
  .min(1)
  .max(MAX_LIMIT)
  .default(DEFAULT_LIMIT)
  .describe(`Page size (1–${MAX_LIMIT}, default ${DEFAULT_LIMIT})`);

/** `{ data, next_cursor }` */
export const page = <T extends z.ZodType>(item: T) =>
  z.object({ data: z.array(item), next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page') });
