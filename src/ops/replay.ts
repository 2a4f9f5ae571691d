import type { Sql } from '../db/client.js';
import { kickDrain } from '../drain/kick-drain.js';

/**
 * Dead-letter replay. A replay re-applies stored events from their raw bodies with today's code: it sets matching
 * rows back to `pending` with via = 'replay' (attempts kept, last_error kept until the drain overwrites it) and wakes
 * the drain. It updates the stored row in place, so deduplication (which guards inserts) never swallows it, and the
 * appliers' version guard still keeps an old event from overwriting a newer state.
 *
 * Each batch is its own autocommit UPDATE: interrupting a replay loses nothing (rows already set to pending are
 * drained; the rest keep their status and are found by the next run).
 */

export interface ReplayFilter {
  status: 'dead' | 'ignored';
  topic?: string;
  sourceId?: string;
  /** received_at ≥ since */
  since?: Date;
  /** received_at < until */
  until?: Date;
  /** Exactly this last_error (null: rows without one); undefined: any. The ops page replays a dead-letter group so. */
  reason?: string | null;
}

// `status in (…)` first: with the status as a parameter, it is what lets the planner use the partial index.
const filterSql = (sql: Sql, f: ReplayFilter) => sql`
  status in ('dead', 'ignored') and status = ${f.status}
  and (${f.topic ?? null}::text is null or topic = ${f.topic ?? null}::text)
  and (${f.sourceId ?? null}::text is null or source_id = ${f.sourceId ?? null}::text)
  and (${f.since ?? null}::timestamptz is null or received_at >= ${f.since ?? null}::timestamptz)
  and (${f.until ?? null}::timestamptz is null or received_at < ${f.until ?? null}::timestamptz)
  and (not ${f.reason !== undefined}::boolean or last_error is not distinct from ${f.reason ?? null}::text)`;

/** How many rows match, by topic. Read-only. */
export async function countReplayable(sql: Sql, f: ReplayFilter): Promise<{ topic: string | null; count: number }[]> {
  return sql<{ topic: string | null; count: number }[]>`
    select topic, count(*)::int as count from inbox_events where ${filterSql(sql, f)} group by topic order by count desc`;
}

/**
 * Sets at most `limit` matching rows with id > `afterId` back to pending (via = 'replay'), lowest ids first.
 * Returns their ids in order (empty: nothing left). One statement; safe to repeat.
 */
export async function requeueForReplay(sql: Sql, f: ReplayFilter, p: { afterId: number; limit: number }): Promise<number[]> {
  const rows = await sql<{ id: string }[]>`
    update inbox_events set status = 'pending', via = 'replay', processed_at = null
     where id in (
       select id from inbox_events where ${filterSql(sql, f)} and id > ${p.afterId}::bigint order by id limit ${p.limit}::int)
    returning id`;
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/** Current statuses of the given inbox rows (rows pruned since count as `gone`). */
export async function countStatuses(sql: Sql, ids: number[]): Promise<Record<string, number>> {
  const rows = await sql<{ status: string; count: number }[]>`
    select coalesce(e.status, 'gone') as status, count(*)::int as count
      from unnest(${ids}::bigint[]) as i(id) left join inbox_events e on e.id = i.id
     group by 1`;
  return Object.fromEntries(rows.map((r) => [r.status, r.count]));
}

export interface ReplayProgress {
  requeued: number;
  total: number;
}

/**
 * Requeues every matching row in batches of `batchSize` (kicking the drain after each), then waits up to `waitMs` for
 * the drain to settle them and returns what became of them. `onProgress` is called after each batch.
 */
export async function replay(
  sql: Sql,
  f: ReplayFilter,
  p: {
    batchSize: number;
    total: number;
    waitMs: number;
    pollMs?: number;
    onProgress?: (r: ReplayProgress) => void;
    /** While waiting for the drain: what became of the requeued rows so far (pending included). */
    onWait?: (outcome: Record<string, number>) => void;
  },
): Promise<{ ids: number[]; outcome: Record<string, number>; settled: boolean }> {
  const ids: number[] = [];
  let afterId = 0;
  for (;;) {
    const batch = await requeueForReplay(sql, f, { afterId, limit: p.batchSize });
    if (batch.length === 0) break;
    ids.push(...batch);
    afterId = batch[batch.length - 1];
    await kickDrain(sql);
    p.onProgress?.({ requeued: ids.length, total: Math.max(p.total, ids.length) });
    if (batch.length < p.batchSize) break;
  }
  const deadline = Date.now() + p.waitMs;
  let outcome = ids.length ? await countStatuses(sql, ids) : {};
  while ((outcome.pending ?? 0) > 0 && Date.now() < deadline) {
    p.onWait?.(outcome);
    await new Promise((r) => setTimeout(r, p.pollMs ?? 250));
    outcome = await countStatuses(sql, ids);
  }
  return { ids, outcome, settled: (outcome.pending ?? 0) === 0 };
}
