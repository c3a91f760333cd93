/**
 * What one worker process knows of the chunks it holds, shared by all its
 * chunk jobs (built once by the composition root): the gate that runs a
 * suspect chunk alone, the starts it could not end, the judged or generating
 * chunks in flight by run, and the generations in flight by cache key.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { endChunk } from './run-lifecycle.ts';

/**
 * What this process knows of the chunks it holds, shared by all its chunk jobs:
 * one per worker process, built by the composition root. Holds no connection
 * or timer, so there is nothing to close.
 */
export class LocalChunks {
  /** Generations in flight in this process by tenant and cache key: a second item with the same request waits for the first's answer. */
  readonly generating = new Map<string, Promise<unknown>>();
  /** A chunk that crashed a worker before runs alone here (see takeChunk). */
  readonly gate = new ChunkGate();
  /**
   * Starts this process ended while Postgres could not hear it (the outage that
   * failed the chunk usually fails this write too). They are ended at the next
   * chunk this process takes, so that a Postgres outage is not counted as
   * crashes; bounded, a process that lives through a very long outage forgets
   * the oldest and those chunks keep one crash each.
   */
  private readonly startsLeftOpen = new Map<string, { runId: string; chunkIndex: number }>();
  private static readonly MAX_STARTS_LEFT_OPEN = 10_000;
  /** Judged chunks started by this process so far. */
  private judgedChunks = 0;
  /** In-flight judged chunks of this process by run, so ending a run stops them at once (other processes poll). */
  private readonly activeRuns = new Map<string, Set<AbortController>>();

  /** Remembers a start that could not be ended, for endStartsLeftOpen. */
  leftOpen(runId: string, chunkIndex: number): void {
    if (this.startsLeftOpen.size >= LocalChunks.MAX_STARTS_LEFT_OPEN) this.startsLeftOpen.delete(this.startsLeftOpen.keys().next().value as string);
    this.startsLeftOpen.set(`${runId}-${chunkIndex}-${randomUUID()}`, { runId, chunkIndex });
  }

  /** Ends the starts left open, in order, until Postgres fails again. */
  async endStartsLeftOpen(em: EntityManager): Promise<void> {
    for (const [key, start] of this.startsLeftOpen) {
      this.startsLeftOpen.delete(key); // before the await: concurrent chunks of this process must not end it twice
      try {
        await endChunk(em, start.runId, start.chunkIndex);
      } catch {
        this.startsLeftOpen.set(key, start);
        return; // still unreachable: the next chunk tries again
      }
    }
  }

  /** The start order of a judged chunk in this process. */
  nextJudgeOrder(): number {
    return this.judgedChunks++;
  }

  /** Registers a judged chunk of the run in flight; returns its unregistration. */
  judging(runId: string, controller: AbortController): () => void {
    const here = this.activeRuns.get(runId) ?? new Set<AbortController>();
    here.add(controller);
    this.activeRuns.set(runId, here);
    return () => {
      here.delete(controller);
      if (here.size === 0) this.activeRuns.delete(runId);
    };
  }

  /** Stops every judged chunk of the run in flight here. */
  abortRun(runId: string, reason: unknown): void {
    for (const c of this.activeRuns.get(runId) ?? []) c.abort(reason);
  }
}

/** This process's chunks between their counted start and its end; a suspect chunk runs with none beside it. */
export class ChunkGate {
  private inFlight = 0;
  private alone: Promise<void> | null = null;
  private idle: (() => void)[] = [];

  async enter(): Promise<() => void> {
    while (this.alone) await this.alone;
    this.inFlight++;
    return once(() => this.exit());
  }

  async enterAlone(): Promise<() => void> {
    while (this.alone) await this.alone;
    let release: () => void = () => undefined;
    this.alone = new Promise<void>((resolve) => {
      release = resolve;
    });
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    this.inFlight++;
    return once(() => {
      this.alone = null;
      this.exit();
      release();
    });
  }

  private exit(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const wake of this.idle.splice(0)) wake();
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

