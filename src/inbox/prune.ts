import type { Sql } from '../db/client.js';
import { DAY } from '../config.js';

/**
 * Retention. Processed inbox rows go after `processedDays`, dead and ignored ones after `deadDays` (kept longer: they
 * are what replay works on), quarantine samples and counters after `quarantineDays` (QUARANTINE_RETENTION_DAYS,
 * shorter: they are diagnostics). Pending rows are never pruned.
 *
 * Each batch is one autocommit DELETE of at most `batchSize` ids, so no lock is held for long and the drain and the
 * intake keep running. Processed rows are found in id order (ids grow with received_at), dead and ignored ones through
 * their partial (status, received_at) index. Work stops early when `shouldStop()` says so (a time budget, a
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
  const steps: { key: 'processed' | 'deadOrIgnored' | 'quarantine'; run: () => Promise<number> }[] = [
    { key: 'processed', run: () => deleteInboxBatch(sql, ['processed'], processedCutoff, p.batchSize) },
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
  result.complete = true;
  return result;
}

/** Deletes at most `limit` inbox rows of the given statuses received before `before`. Returns how many. */
export async function deleteInboxBatch(sql: Sql, statuses: string[], before: Date, limit: number): Promise<number> {
  const cutoff = before;
  // Two plans: the oldest processed rows come first in id order; dead and ignored rows have an index of their own.
  const rows = statuses.every((s) => s === 'dead' || s === 'ignored')
    ? await sql`
        delete from inbox_events where id in (
          select id from inbox_events
           where status in ('dead', 'ignored') and status = any(${statuses}::text[]) and received_at < ${cutoff}::timestamptz
           order by status, received_at
           limit ${limit}::int)
        returning 1`
    : await sql`
        delete from inbox_events where id in (
          select id from inbox_events
           where status = any(${statuses}::text[]) and status <> 'pending' and received_at < ${cutoff}::timestamptz
           order by id
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

/** Deletes at most `limit` quarantine counters of buckets that started before `before`. Returns how many. */
export async function deleteQuarantineCountsBatch(sql: Sql, before: Date, limit: number): Promise<number> {
  const rows = await sql`
    delete from quarantine_counts where (source_id, reason, bucket) in (
      select source_id, reason, bucket from quarantine_counts
       where bucket < ${before}::timestamptz order by bucket limit ${limit}::int)
    returning 1`;
  return rows.length;
}
