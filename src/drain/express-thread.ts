import { parentPort, workerData } from 'node:worker_threads';
import { createDb } from '../db/client.js';
import { drainChunk } from './drain-inbox.js';
import { type ExpressRunParams, type FromThread, IN_FLIGHT, type ToThread } from './express-lane.js';

/**
 * The express lane's thread (express-lane.ts): runs express chunks on its own connection while the main thread's
 * `drainInbox` says so, and reports each chunk. The shared word IN_FLIGHT is 1 while a chunk is in flight, so a bulk
 * loop can start its chunk after it.
 */
const { url, applicationName, flags } = workerData as { url: string; applicationName: string; flags: Int32Array };
const port = parentPort!;
const db = createDb({ url, max: 1, prepare: true, applicationName });

let run: { id: number; params: ExpressRunParams; mode: 'run' | 'finish' | 'stop'; deadline: number } | undefined;
let closing = false;
let wake: (() => void) | undefined;
const post = (m: FromThread) => port.postMessage(m);

port.on('message', (m: ToThread) => {
  if (m.type === 'run') run = { id: m.id, params: m.params, mode: 'run', deadline: performance.now() + m.params.budgetMs };
  else if (m.type === 'close') closing = true;
  else if (run?.id === m.id && run.mode !== 'stop') run.mode = m.type;
  wake?.();
});

/** Resolves after `ms`, or at once when a message comes (`ms` undefined: only then). */
const pause = (ms?: number) =>
  new Promise<void>((resolve) => {
    const timer = ms === undefined ? undefined : setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  }).finally(() => {
    wake = undefined;
  });

async function loop(): Promise<void> {
  while (!closing) {
    const r = run;
    if (!r) {
      await pause();
      continue;
    }
    const p = r.params;
    const started = performance.now();
    Atomics.store(flags, IN_FLIGHT, 1);
    let claimed: number;
    try {
      const result = await drainChunk(db.sql, p.chunkSize, {
        lane: { lane: 'express', perSource: p.perSource },
        maxBytes: p.maxBytes,
        futureToleranceMs: p.futureToleranceMs,
      });
      claimed = result.claimed;
      if (claimed > 0) post({ type: 'chunk', id: r.id, result, ms: performance.now() - started });
    } catch (err) {
      const e = err as { message?: unknown; code?: unknown; name?: unknown };
      run = undefined;
      post({
        type: 'failed',
        id: r.id,
        error: { message: String(e?.message ?? err), code: typeof e?.code === 'string' ? e.code : undefined, name: typeof e?.name === 'string' ? e.name : undefined },
      });
      continue;
    } finally {
      Atomics.store(flags, IN_FLIGHT, 0);
      Atomics.notify(flags, IN_FLIGHT);
    }
    // Mirrors drainInbox's in-process express loop: it ends once the bulk loops have (finish) and it finds nothing,
    // or past the budget.
    if (r.mode === 'stop' || (r.mode === 'finish' && (claimed === 0 || performance.now() >= r.deadline))) {
      run = undefined;
      post({ type: 'done', id: r.id, emptied: claimed === 0 && r.mode === 'finish' });
    } else if (claimed === 0) {
      await pause(p.idleMs);
    }
  }
  await db.close();
  post({ type: 'closed' });
}

void loop();
