/**
 * Test-only fault points, switched on by EVALGATE_FAULT (a comma list).
 * Production never sets it; with it unset every check below is a no-op.
 *   crash-before-enqueue   SIGKILL the API process between the run's commit and its enqueue
 *   crash-before-record    SIGKILL a worker after scoring a chunk, before recording it
 *   chunk-delay-ms=N       sleep N ms in every chunk (makes a run slow enough to interrupt)
 *   crash-on-chunk=K       SIGKILL a worker as it begins chunk K of any run (a chunk that kills every worker)
 *   purge-delay-ms=N       sleep N ms after every batch of the deletion purge (makes a deletion slow enough to interrupt)
 */
export interface Faults {
  crashBeforeEnqueue: boolean;
  crashBeforeRecord: boolean;
  chunkDelayMs: number;
  /** chunk index that kills the worker taking it, or null */
  crashOnChunk: number | null;
  purgeDelayMs: number;
}

export function parseFaults(spec: string | undefined): Faults {
  const parts = new Set((spec ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  let chunkDelayMs = 0;
  let crashOnChunk: number | null = null;
  let purgeDelayMs = 0;
  for (const p of parts) {
    const d = /^purge-delay-ms=(\d+)$/.exec(p);
    if (d) purgeDelayMs = Number(d[1]);
    const m = /^chunk-delay-ms=(\d+)$/.exec(p);
    if (m) chunkDelayMs = Number(m[1]);
    const k = /^crash-on-chunk=(\d+)$/.exec(p);
    if (k) crashOnChunk = Number(k[1]);
  }
  return {
    crashBeforeEnqueue: parts.has('crash-before-enqueue'),
    crashBeforeRecord: parts.has('crash-before-record'),
    chunkDelayMs,
    crashOnChunk,
    purgeDelayMs,
  };
}

/** Kills this process the hard way, as a power cut or the OOM killer would. */
export function crashNow(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}
