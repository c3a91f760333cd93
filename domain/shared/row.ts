import type { InferEntity } from '@mikro-orm/core';

/**
 * A table's row as `sql()` hands it back, derived from the entity so that a
 * column is declared once: every column of the entity (a relation mapped to
 * its key is the key's type), an optional property read as `| null`, which
 * is what Postgres returns for it. Pick the columns a statement selects:
 * `RowOf<typeof EvalRun, 'id' | 'status'>`. MikroORM types `double` as
 * `string | number`; pg parses float8 to a number, so narrow those with Omit
 * and an explicit `number` where it matters.
 */
export type RowOf<S, K extends keyof InferEntity<S> = keyof InferEntity<S>> = {
  -readonly [P in K]-?: undefined extends InferEntity<S>[P] ? Exclude<InferEntity<S>[P], undefined> | null : InferEntity<S>[P];
};
