import { hostname } from 'node:os';
import type { Sql } from '../db/client.js';

/**
 * Worker heartbeats: each worker process records the graphile-worker pool id(s) it runs (in 0.17 that id is what
 * jobs' and queues' `locked_by` holds) with host, pid and `last_seen_at` (the database's clock, so hosts' clocks never
 * matter). clear-stale-locks treats a lock whose holder has no fresh heartbeat as abandoned.
 */

/** Inserts or refreshes one row per worker id (last_seen_at = now()). Idempotent; one statement. */
export async function upsertWorkerHeartbeats(
  sql: Sql,
  p: { workerIds: string[]; host: string; pid: number },
): Promise<void> {
  if (p.workerIds.length === 0) return;
  await sql`
    insert into worker_heartbeats (worker_id, host, pid)
    select w, ${p.host}, ${p.pid}::int from unnest(${p.workerIds}::text[]) as w
    on conflict (worker_id) do update set last_seen_at = now(), host = excluded.host, pid = excluded.pid`;
}

/** Removes the rows of workers that stopped cleanly (they hold no locks any more). */
export async function deleteWorkerHeartbeats(sql: Sql, workerIds: string[]): Promise<void> {
  if (workerIds.length === 0) return;
  await sql`delete from worker_heartbeats where worker_id = any(${workerIds}::text[])`;
}

export interface Heartbeat {
  /** Writes the final beat's removal; call after the worker pool stopped. */
  stop(): Promise<void>;
}

/**
 * Beats every `intervalMs` for the ids `workerIds()` returns now (pools come and go). A failed beat is reported and
 * retried at the next tick: a database blip must not stop the worker, only make it look stale for a while.
 */
export function startHeartbeat(
  sql: Sql,
  opts: { workerIds: () => string[]; intervalMs: number; onError: (err: unknown) => void },
): Heartbeat {
  const host = hostname();
  const seen = new Set<string>();
  let inflight: Promise<void> = Promise.resolve();
  const beat = () => {
    const workerIds = opts.workerIds();
    for (const id of workerIds) seen.add(id);
    inflight = upsertWorkerHeartbeats(sql, { workerIds, host, pid: process.pid }).catch(opts.onError);
  };
  beat();
  const timer = setInterval(beat, opts.intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await inflight;
      await deleteWorkerHeartbeats(sql, [...seen]).catch(opts.onError);
    },
  };
}
