import type { Sql } from '../db/client.js';

/**
 * Stale graphile-worker locks. graphile-worker itself only frees a lock after 4 hours; we free it as soon as its holder
 * is known dead: the holder's heartbeat (worker_heartbeats) is older than `deadAfterMs`, or it never wrote one, and the
 * lock itself is older than `deadAfterMs` (so a worker that just started and has not beaten yet keeps its locks).
 * A lock's age alone never decides: a slow job of a live worker keeps its lock however long it runs.
 *
 * The comparison uses the database's clock on both sides (heartbeats write now()).
 */

export interface StaleLock {
  kind: 'job' | 'queue';
  /** Job id, or queue name. */
  id: string;
  /** Task identifier (jobs only). */
  task: string | null;
  workerId: string;
  lockedAt: Date;
  ageSeconds: number;
  /** Last heartbeat of the holder; null when it never wrote one. */
  lastSeenAt: Date | null;
  host: string | null;
  pid: number | null;
}

/** Every lock held by a dead worker, oldest first. Read-only; one statement. */
export async function findStaleLocks(sql: Sql, p: { deadAfterMs: number }): Promise<StaleLock[]> {
  const rows = await sql<StaleLock[]>`
    with cutoff as (select now() - ${p.deadAfterMs}::int * interval '1 millisecond' as t),
    locks as (
      select 'job' as kind, j.id::text as id, t.identifier as task, j.locked_by, j.locked_at
        from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
       where j.locked_by is not null
      union all
      select 'queue', q.queue_name, null, q.locked_by, q.locked_at
        from graphile_worker._private_job_queues q
       where q.locked_by is not null)
    select l.kind, l.id, l.task, l.locked_by as "workerId", l.locked_at as "lockedAt",
           extract(epoch from now() - l.locked_at)::float8 as "ageSeconds",
           h.last_seen_at as "lastSeenAt", h.host, h.pid
      from locks l cross join cutoff c
      left join worker_heartbeats h on h.worker_id = l.locked_by
     where l.locked_at < c.t and (h.worker_id is null or h.last_seen_at < c.t)
     order by l.locked_at, l.kind, l.id`;
  return rows.map((r) => ({ ...r, lockedAt: r.lockedAt, lastSeenAt: r.lastSeenAt }));
}

export interface LockRelease {
  workerId: string;
  jobIds: string[];
  queueNames: string[];
  lastSeenAt: Date | null;
}

/**
 * Releases every stale lock through graphile-worker's own `force_unlock_workers` (the admin function for dead
 * workers), writes one lock_releases audit row per dead worker and forgets those workers' heartbeats, in one
 * transaction. The released jobs run again at once on a live worker (their attempt was already counted).
 */
export async function releaseStaleLocks(
  sql: Sql,
  p: { deadAfterMs: number; releasedBy: string },
): Promise<LockRelease[]> {
  return sql.begin(async (tx) => {
    const locks = await findStaleLocks(tx as unknown as Sql, p);
    const byWorker = new Map<string, LockRelease>();
    for (const l of locks) {
      let r = byWorker.get(l.workerId);
      if (!r) byWorker.set(l.workerId, (r = { workerId: l.workerId, jobIds: [], queueNames: [], lastSeenAt: l.lastSeenAt }));
      (l.kind === 'job' ? r.jobIds : r.queueNames).push(l.id);
    }
    const releases = [...byWorker.values()];
    if (releases.length === 0) return [];
    const workerIds = releases.map((r) => r.workerId);
    await tx`select graphile_worker.force_unlock_workers(${workerIds}::text[])`;
    // Arrays of arrays do not unnest per row: pass each worker's ids as one JSON text and split it in SQL. Times go
    // as text[] and are cast per element (postgres.js cannot bind a timestamptz[] parameter).
    await tx`
      insert into lock_releases (worker_id, job_ids, queue_names, last_seen_at, released_by)
      select w, array(select jsonb_array_elements_text(j::jsonb)), array(select jsonb_array_elements_text(q::jsonb)),
             s::timestamptz, ${p.releasedBy}
        from unnest(${workerIds}::text[], ${releases.map((r) => JSON.stringify(r.jobIds))}::text[],
                    ${releases.map((r) => JSON.stringify(r.queueNames))}::text[],
                    ${releases.map((r) => r.lastSeenAt?.toISOString() ?? null)}::text[]) as u(w, j, q, s)`;
    await tx`delete from worker_heartbeats where worker_id = any(${workerIds}::text[])`;
    return releases;
  });
}
