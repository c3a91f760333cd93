/**
 * Bounds on waiting for a dependency that may never answer (a frozen Redis, a
 * partitioned Postgres): the caller gets an answer in time and the work left
 * behind is finished by whatever backs it up (the reconciler, a retry).
 */

/** `p`, or a rejection naming `what` after `ms`; the timer never outlives the race. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Whether `p` settles (either way) within `ms`. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  try {
    await withDeadline(
      p.then(
        () => undefined,
        () => undefined,
      ),
      ms,
      'wait',
    );
    return true;
  } catch {
    return false;
  }
}
