import { parentPort, workerData } from 'node:worker_threads';
import { createDb } from '../db/client.js';
import { runExpressLoop } from './drain-inbox.js';
import { clearInFlight, type ExpressRunParams, type FromThread, IN_FLIGHT, type ToThread } from './express-lane.js';

/**
 * The express lane's thread (express-lane.ts): runs the express loop (runExpressLoop, drain-inbox.ts, as drainInbox
 * does without a thread) on its own connection while the main thread's `drainInbox` says so, and reports each chunk.
 * The shared word IN_FLIGHT is 1 while a chunk is in flight, so a bulk loop can start its chunk after it.
 */
const { url, applicationName, flags } = workerData as { url: string; applicationName: string; flags: Int32Array };
const port = parentPort!;
const db = createDb({ url, max: 1, prepare: true, applicationName });

let run: { id: number; params: ExpressRunParams; mode: 'run' | 'finish' | 'stop' } | undefined;
let closing = false;
let wake: (() => void) | undefined;
const post = (m: FromThread) => port.postMessage(m);

port.on('message', (m: ToThread) => {
  if (m.type === 'run') run = { id: m.id, params: m.params, mode: 'run' };
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
    let outcome: FromThread;
    try {
      const emptied = await runExpressLoop(db.sql, r.params, {
        mode: () => (closing ? 'stop' : r.mode),
        onChunk: (result, ms) => post({ type: 'chunk', id: r.id, result, ms }),
        track: (chunk) => {
          Atomics.store(flags, IN_FLIGHT, 1);
          const clear = () => clearInFlight(flags);
          chunk.then(clear, clear);
        },
        pause,
      });
      outcome = { type: 'done', id: r.id, emptied };
    } catch (err) {
      const e = err as { message?: unknown; code?: unknown; name?: unknown };
      outcome = {
        type: 'failed',
        id: r.id,
        error: { message: String(e?.message ?? err), code: typeof e?.code === 'string' ? e.code : undefined, name: typeof e?.name === 'string' ? e.name : undefined },
      };
    }
    // Free before the main thread hears of it: its next run's message may follow at once.
    run = undefined;
    post(outcome);
  }
  await db.close();
  post({ type: 'closed' });
}

void loop();
