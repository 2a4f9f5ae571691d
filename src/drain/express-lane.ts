import { Worker } from 'node:worker_threads';
import type { ChunkResult } from './chunk-result.js';

/**
 * The drain's express loop in a worker thread of its own (docs/drain.md "Fairness between sources"): its own event
 * loop and heap, and its own connection. In the drain's process, a bulk chunk's JavaScript (normalising 500 events,
 * building and reading its statements) and its garbage collection hold the one event loop for tens of milliseconds
 * at a time, and every round trip of an express chunk waited for them. The bulk loops stay where they are; they see
 * the thread through one shared word (an express chunk is in flight) and its messages (each chunk's result).
 *
 * One thread per lane, started at once, kept between drains; `drainInbox` runs it for the length of its own run
 * (`run`), one run at a time: a second drain of the same process at the same time (graphile-worker may run the next
 * drain job while one is finishing) runs its express loop in its own event loop, as without a thread.
 */

/** What the thread needs to open its connection (the worker pool's own options). */
export interface ExpressLaneOptions {
  url: string;
  applicationName?: string;
}

/** What a run of the express loop does (the drainInbox call's options). */
export interface ExpressRunParams {
  chunkSize: number;
  perSource: number;
  maxBytes?: number;
  futureToleranceMs?: number;
  /** Past this many ms from the start, a finishing run stops after its chunk even if it found rows. */
  budgetMs: number;
  /** How long the loop waits after a chunk that found nothing, while the run goes on. */
  idleMs: number;
}

export interface ExpressRun {
  /** The bulk loops have ended: stop at the first chunk that finds nothing (or past the budget). */
  finish(): void;
  /** Stop after the chunk in flight (a bulk loop failed). */
  stop(): void;
  /** Whether the run ended on a chunk that found nothing; rejects with a chunk's error. */
  done: Promise<boolean>;
}

export interface ExpressLane {
  /** A run is in flight (another drain of this process: it runs its express loop in its own event loop). */
  busy(): boolean;
  /** Starts a run; `onChunk` sees each chunk that claimed rows, with its duration. Throws while busy. */
  run(params: ExpressRunParams, onChunk: (r: ChunkResult, ms: number) => void): ExpressRun;
  /** Resolves when no express chunk is in flight, at the latest after `maxMs`; undefined when none is. */
  inFlight(maxMs: number): Promise<unknown> | undefined;
  close(): Promise<void>;
}

export type ToThread =
  | { type: 'run'; id: number; params: ExpressRunParams }
  | { type: 'finish' | 'stop'; id: number }
  | { type: 'close' };
export type FromThread =
  | { type: 'chunk'; id: number; result: ChunkResult; ms: number }
  | { type: 'done'; id: number; emptied: boolean }
  | { type: 'failed'; id: number; error: { message: string; code?: string; name?: string } }
  | { type: 'closed' };

/** Index of the shared word: 1 while an express chunk is in flight. */
export const IN_FLIGHT = 0;

/** Sets the shared word to "no express chunk in flight" and wakes the bulk loops waiting on it. */
export function clearInFlight(flags: Int32Array): void {
  Atomics.store(flags, IN_FLIGHT, 0);
  Atomics.notify(flags, IN_FLIGHT);
}

/** The thread's entry, run as TypeScript through tsx when this file is (development, tests), else the built file. */
function spawn(workerData: unknown): Worker {
  const ts = import.meta.url.endsWith('.ts');
  const entry = new URL(`./express-thread.${ts ? 'ts' : 'js'}`, import.meta.url).href;
  if (!ts) return new Worker(new URL(entry), { workerData });
  // tsx's CLI does not load its hooks into worker threads: the thread imports its entry through tsx's API.
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(api)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}))`;
  return new Worker(code, { eval: true, workerData });
}

function revive(e: { message: string; code?: string; name?: string }): Error {
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code }, e.name ? { name: e.name } : {});
}

export function startExpressLane(opts: ExpressLaneOptions): ExpressLane {
  const flags = new Int32Array(new SharedArrayBuffer(4));
  let nextId = 1;
  let current:
    | { id: number; onChunk: (r: ChunkResult, ms: number) => void; resolve: (emptied: boolean) => void; reject: (e: Error) => void }
    | undefined;
  let dead = false;
  let closing = false;
  let closed: (() => void) | undefined;
  const start = () => {
    const w = spawn({ url: opts.url, applicationName: opts.applicationName ?? 'wharf-worker-express', flags });
    // The thread must not keep the process alive on its own (a shutdown closes it; a test that forgets does not hang).
    w.unref();
    w.on('message', (m: FromThread) => {
      if (m.type === 'closed') return closed?.();
      if (!current || m.id !== current.id) return;
      if (m.type === 'chunk') return current.onChunk(m.result, m.ms);
      const c = current;
      current = undefined;
      if (m.type === 'done') c.resolve(m.emptied);
      else c.reject(revive(m.error));
    });
    // A thread that died (a crash, not a chunk's error: those come as messages) fails the run in flight; the next run
    // starts a new one.
    const fail = (err: Error) => {
      if (w !== worker) return;
      dead = true;
      clearInFlight(flags);
      current?.reject(err);
      current = undefined;
      closed?.();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`express lane: its thread exited (code ${code})`)));
    return w;
  };
  let worker = start();
  return {
    busy: () => current !== undefined,
    run(params, onChunk) {
      if (closing) return { finish() {}, stop() {}, done: Promise.reject(new Error('express lane: closed')) };
      if (current) throw new Error('express lane: one run at a time');
      if (dead) {
        dead = false;
        worker = start();
      }
      const id = nextId++;
      const done = new Promise<boolean>((resolve, reject) => {
        current = { id, onChunk, resolve, reject };
      });
      worker.postMessage({ type: 'run', id, params } satisfies ToThread);
      return {
        finish: () => worker.postMessage({ type: 'finish', id } satisfies ToThread),
        stop: () => worker.postMessage({ type: 'stop', id } satisfies ToThread),
        done,
      };
    },
    inFlight(maxMs) {
      const wait = Atomics.waitAsync(flags, IN_FLIGHT, 1, maxMs);
      return wait.async ? wait.value : undefined;
    },
    close() {
      closing = true;
      if (dead) return Promise.resolve();
      return new Promise<void>((resolve) => {
        closed = resolve;
        worker.postMessage({ type: 'close' } satisfies ToThread);
      }).then(() => worker.terminate().then(() => undefined));
    },
  };
}
