import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Runs raw SQL on the entity manager's connection, inside its transaction
 * when there is one. `?` placeholders, as knex.
 */
export function sql<T = Record<string, unknown>>(em: EntityManager, query: string, params: unknown[] = []): Promise<T[]> {
  return em.getConnection().execute<T[]>(query, params as never[], 'all', em.getTransactionContext());
}
