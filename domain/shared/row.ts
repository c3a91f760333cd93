import type { InferEntity } from '@mikro-orm/core';

/** The entity's columns: its string keys (MikroORM's symbol-keyed markers, like PrimaryKeyProp, are no columns). */
export type ColumnOf<S> = Extract<keyof InferEntity<S>, string>;

/**
 * A table's row as `sql()` hands it back, derived from the entity so that a
 * column is declared once: every column of the entity (a relation mapped to
 * its key is the key's type), an optional property read as `| null`, which
 * is what Postgres returns for it. Pick the columns a statement selects:
 * `RowOf<typeof EvalRun, 'id' | 'status'>`. Where pg's parsing differs from
 * the entity's type, narrow with Omit: MikroORM types `double` as
 * `string | number` (pg parses float8 to a number), and `bigint('number')`
 * as a number (pg hands int8 over as text).
 */
export type RowOf<S, K extends ColumnOf<S> = ColumnOf<S>> = {
  -readonly [P in K]-?: undefined extends InferEntity<S>[P] ? Exclude<InferEntity<S>[P], undefined> | null : InferEntity<S>[P];
};
