import type { EntityManager } from '@mikro-orm/postgresql';

interface PgConnection {
  query(config: { text: string; values: unknown[]; name?: string }): Promise<{ rows: unknown[] }>;
}
interface PoolClient {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(c: PgConnection): Promise<void>;
}

const numbered = new Map<string, string>();

/**
 * ORMs (by their configuration, which every fork shares) whose `prepare`
 * names are dropped. Behind transaction pooling each statement may run on
 * another server connection: a name parsed on one is missing on the next
 * ("prepared statement … does not exist": pg remembers what it parsed per
 * client connection and sends only the name), and another client's first use
 * of the name can land where it was parsed already ("… already exists").
 * Unnamed statements are parsed and planned with every execution, on whatever
 * server connection runs them.
 */
const unnamed = new WeakSet<object>();

/** Entity managers whose statements outside a transaction read from the ORM's read replica (when it has one). */
const readers = new WeakSet<object>();

/**
 * Lets `em`'s statements outside a transaction go to the read replica
 * (DATABASE_REPLICA_URL; without one, nothing changes). For reads that may lag
 * the primary a little: a statement inside `em.transactional` still runs on the
 * primary, so a read that must see a write, and every write, stays there.
 */
export function readsFromReplica<E extends EntityManager>(em: E): E {
  if (em.config.get('replicas')?.length) readers.add(em);
  return em;
}

/** Turns sql()'s named statements into unnamed ones for this ORM (DATABASE_PREPARED_STATEMENTS=false). */
export function useUnnamedStatements(em: EntityManager): void {
  unnamed.add(em.config);
}

/** `?` placeholders → `$1`, `$2`, … (cached per statement text; statements are literals, so the map stays small). */
function toNumbered(query: string): string {
  let text = numbered.get(query);
  if (text === undefined) {
    let n = 0;
    text = query.replace(/\?/g, () => `$${++n}`);
    if (numbered.size < 1_000) numbered.set(query, text);
  }
  return text;
}

/**
 * Runs raw SQL on the entity manager's connection, inside its transaction
 * when there is one. `?` placeholders (no `?` may appear anywhere else in the
 * text, e.g. jsonb's `?` operators: use the functions instead).
 *
 * Parameters are bound (sent apart from the statement text), not inlined:
 * MikroORM's `execute(sql, params)` escapes every value into the text, which
 * cost CPU on both sides for large JSON payloads (a chunk's results, an
 * upload batch). The statement goes straight to the pooled `pg` connection
 * (knex's pool, or the transaction's connection), skipping knex's query
 * builder machinery, a large share of the API's CPU on the schedule path.
 * Arrays are refused: pass them as JSON (`?::jsonb`).
 *
 * `prepare` names a hot statement: each pooled connection parses and plans
 * it once and afterwards only binds and executes it (the name must be unique
 * to this statement text; pg refuses one name for two texts). Dropped for an
 * ORM given to useUnnamedStatements (transaction pooling).
 */
export async function sql<T = Record<string, unknown>>(
  em: EntityManager,
  query: string,
  params: unknown[] = [],
  opts: { prepare?: string } = {},
): Promise<T[]> {
  for (const p of params) {
    if (Array.isArray(p)) throw new TypeError('sql(): pass arrays as JSON text (?::jsonb), not as a parameter list');
    if (p === undefined) throw new TypeError('sql(): undefined parameter; pass null');
  }
  const trx = em.getTransactionContext<{ client: PoolClient }>();
  const client = trx ? trx.client : (em.getKnex(readers.has(em) ? 'read' : 'write').client as PoolClient);
  const conn = await client.acquireConnection();
  try {
    const name = opts.prepare !== undefined && !unnamed.has(em.config) ? opts.prepare : undefined;
    const res = await conn.query({ text: toNumbered(query), values: params, name });
    return res.rows as T[];
  } finally {
    await client.releaseConnection(conn);
  }
}

/**
 * `'a', 'b'`: constants (an enum's values from entities/, never input) for an
 * `in (…)` written into a statement's text, so a status list is declared once.
 */
export function sqlList(values: readonly string[]): string {
  return values.map((v) => `'${v}'`).join(', ');
}
