import type { Sql } from '../db/client.js';
import { DAY } from '../config.js';

/**
 * Retention. Processed inbox rows go after `processedDays`, dead and ignored ones after `deadDays` (kept longer: they
 * are what replay works on), quarantine samples and counters after `quarantineDays` (QUARANTINE_RETENTION_DAYS,
 * shorter: they are diagnostics). Pending rows are never pruned.
 *
 * Each batch is one autocommit DELETE of at most `batchSize` ids, so no lock is held for long and the drain and the
 * intake keep running. Processed rows are found in id order (ids grow with received_at) between the last batch's and
 * the newest id before the cutoff, dead and ignored ones through their partial (status, received_at) index: no batch
 * reads rows of the inbox it keeps beyond the dead and ignored ones (test/plans, docs/scale.md). Work stops early when `shouldStop()` says so (a time budget, a
 * shutdown): the next run continues.
 */
export interface PruneResult {
  processed: number;
  deadOrIgnored: number;
  quarantine: number;
  batches: number;
  /** False when it stopped before running out of rows. */
  complete: boolean;
}

export async function pruneInbox(
  sql: Sql,
  p: {
    processedDays: number;
    deadDays: number;
    quarantineDays: number;
    batchSize: number;
    now: Date;
    shouldStop?: () => boolean;
    onBatch?: (r: PruneResult) => void;
  },
): Promise<PruneResult> {
  const result: PruneResult = { processed: 0, deadOrIgnored: 0, quarantine: 0, batches: 0, complete: false };
  const processedCutoff = new Date(p.now.getTime() - p.processedDays * DAY);
  const deadCutoff = new Date(p.now.getTime() - p.deadDays * DAY);
  const quarantineCutoff = new Date(p.now.getTime() - p.quarantineDays * DAY);
  // Processed rows: ids up to the newest received before the cutoff, each batch after the last one (keyset), so the
  // dead and ignored rows kept at the start of the id order are read once per run, not once per batch.
  const maxId = await lastInboxIdBefore(sql, processedCutoff);
  let afterId = 0;
  const steps: { key: 'processed' | 'deadOrIgnored' | 'quarantine'; run: () => Promise<number> }[] = [
    {
      key: 'processed',
      run: async () => {
        if (maxId === null) return 0;
        const batch = await deleteProcessedBatch(sql, { before: processedCutoff, limit: p.batchSize, afterId, maxId });
        afterId = batch.lastId;
        return batch.deleted;
      },
    },
    { key: 'deadOrIgnored', run: () => deleteInboxBatch(sql, ['dead', 'ignored'], deadCutoff, p.batchSize) },
    { key: 'quarantine', run: () => deleteQuarantineBatch(sql, quarantineCutoff, p.batchSize) },
    { key: 'quarantine', run: () => deleteQuarantineCountsBatch(sql, quarantineCutoff, p.batchSize) },
  ];
  for (const step of steps) {
    for (;;) {
      if (p.shouldStop?.()) return result;
      const n = await step.run();
      result[step.key] += n;
      result.batches++;
      p.onBatch?.(result);
      if (n < p.batchSize) break;
    }
  }
  await deleteEmptyCounters(sql);
  result.complete = true;
  return result;
}

/**
 * Deletes the dead-and-ignored counters (inbox_finished_counts, kept by triggers) that fell to zero: keys whose rows
 * were pruned or replayed. One statement over a table of one row per source, topic, reason and slot. A counter a
 * concurrent mark is raising is locked by it: the delete waits, sees the new count and keeps it.
 */
export async function deleteEmptyCounters(sql: Sql): Promise<number> {
  const rows = await sql`delete from inbox_finished_counts where count = 0 returning 1`;
  return rows.length;
}

/**
 * Deletes at most `limit` processed inbox rows received before `before` with ids in (`afterId`, `maxId`], oldest id
 * first. Returns how many and the last id deleted (`afterId` when none): the next batch starts after it. `maxId`
 * (lastInboxIdBefore) bounds the batch that finds fewer than `limit`: without it, that batch read every newer row.
 */
export async function deleteProcessedBatch(
  sql: Sql,
  p: { before: Date; limit: number; afterId: number; maxId: number },
): Promise<{ deleted: number; lastId: number }> {
  const [row] = await sql<{ deleted: number; last: string | null }[]>`
    with deleted as (
      delete from inbox_events where id in (
        select id from inbox_events
         where id > ${p.afterId}::bigint and id <= ${p.maxId}::bigint
           and status = 'processed' and received_at < ${p.before}::timestamptz
         order by id
         limit ${p.limit}::int)
      returning id)
    select count(*)::int as deleted, max(id) as last from deleted`;
  return { deleted: row.deleted, lastId: row.last === null ? p.afterId : Number(row.last) };
}

/** Deletes at most `limit` dead or ignored inbox rows (`statuses`) received before `before`. Returns how many. */
export async function deleteInboxBatch(sql: Sql, statuses: string[], before: Date, limit: number): Promise<number> {
  const rows = await sql`
    delete from inbox_events where id in (
      select id from inbox_events
       where status in ('dead', 'ignored') and status = any(${statuses}::text[]) and received_at < ${before}::timestamptz
       order by status, received_at
       limit ${limit}::int)
    returning 1`;
  return rows.length;
}

/** Deletes at most `limit` quarantine rows received before `before`. Returns how many. */
export async function deleteQuarantineBatch(sql: Sql, before: Date, limit: number): Promise<number> {
  const rows = await sql`
    delete from quarantine where id in (
      select id from quarantine where received_at < ${before}::timestamptz order by received_at limit ${limit}::int)
    returning 1`;
  return rows.length;
}

/**
 * The newest inbox id received before `before` (null: none), found by bisecting the primary key (ids grow with
 * received_at), one indexed look-up per step: ~log2(ids) statements, whatever the size of the inbox. A row committed
 * out of order near the cutoff may fall outside the bound: the next run deletes it.
 */
export async function lastInboxIdBefore(sql: Sql, before: Date): Promise<number | null> {
  const firstAtOrAfter = async (id: number) => {
    const [row] = await sql<{ id: string; old: boolean }[]>`
      select id, received_at < ${before}::timestamptz as old from inbox_events where id >= ${id}::bigint order by id limit 1`;
    return row ? { id: Number(row.id), old: row.old } : null;
  };
  const [range] = await sql<{ hi: string | null }[]>`select max(id) as hi from inbox_events`;
  const first = await firstAtOrAfter(0);
  if (!first?.old || range.hi === null) return null;
  let good = first.id; // received before `before`
  let bad = Number(range.hi) + 1; // the first row at or after it was not (or there is none)
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    const row = await firstAtOrAfter(mid);
    if (row?.old && row.id < bad) good = row.id;
    else bad = mid;
  }
  return good;
}

/** Deletes at most `limit` quarantine counters of buckets that started before `before`. Returns how many. */
export async function deleteQuarantineCountsBatch(sql: Sql, before: Date, limit: number): Promise<number> {
  const rows = await sql`
    delete from quarantine_counts where (source_id, reason, bucket) in (
      select source_id, reason, bucket from quarantine_counts
       where bucket < ${before}::timestamptz order by bucket limit ${limit}::int)
    returning 1`;
  return rows.length;
}
