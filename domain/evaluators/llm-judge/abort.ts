/**
 * Cheap cancellation for the judge's hot path. A judged chunk shares one
 * AbortSignal between its lanes; adding and removing an EventTarget listener
 * per request and per wait costs microseconds each and trips Node's
 * MaxListenersExceeded warning at 11 concurrent waiters. Here each signal gets
 * one real listener, which fans out to a Set of callbacks.
 */
const subscribers = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `fn` once when `signal` aborts (not if it already has: check first). Returns the unsubscribe function. */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let set = subscribers.get(signal);
  if (!set) {
    const callbacks = new Set<() => void>();
    subscribers.set(signal, callbacks);
    signal.addEventListener(
      'abort',
      () => {
        for (const f of [...callbacks]) f();
        callbacks.clear();
      },
      { once: true },
    );
    set = callbacks;
  }
  const callbacks = set;
  callbacks.add(fn);
  return () => void callbacks.delete(fn);
}

/** Waits `ms`; rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      resolve();
    }, ms);
    const unsubscribe = onAbort(signal, () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });
}
