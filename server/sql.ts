import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Runs raw SQL on the entity manager's connection, inside its transaction
 * when there is one. `?` placeholders, as knex.
 *
 * Parameters are bound (sent apart from the statement text, `$1`, `$2`, …)
 * rather than inlined: MikroORM's `execute(sql, params)` escapes every value
 * into the text, which costs CPU on both sides for large JSON payloads (a
 * chunk's results, an upload batch). Arrays are refused because knex would
 * expand them into a list; pass them as JSON (`?::jsonb`) instead.
 */
export async function sql<T = Record<string, unknown>>(em: EntityManager, query: string, params: unknown[] = []): Promise<T[]> {
  for (const p of params) {
    if (Array.isArray(p)) throw new TypeError('sql(): pass arrays as JSON text (?::jsonb), not as a parameter list');
    if (p === undefined) throw new TypeError('sql(): undefined parameter; pass null');
  }
  const q = em.getKnex().raw(query, params as never[]);
  const trx = em.getTransactionContext();
  if (trx) q.transacting(trx as never);
  const res = (await q) as { rows: T[] };
  return res.rows;
}
