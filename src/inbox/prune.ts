import type { Sql } from '../db/client.js';
import { DAY } from '../config.js';

/**
 * Retention. Processed inbox rows go after `processedDays`, dead and ignored ones after `deadDays` (kept longer: they
 * are what replay works on), quarantine samples and counters after `quarantineDays` (QUARANTINE_RETENTION_DAYS,
 * shorter: they are diagnostics). Pending rows are never pruned.
 *
 * Each batch is one autocommit DELETE of at most `batchSize` ids, so no lock is held for long and the drain and the
 * intake keep running. Dead and ignored rows are found through their partial (status, received_at) index. Processed
 * rows are found in id order (ids grow with received_at), each batch after the last one (keyset), from a stored
 * watermark (inbox_prune_state, migration 0012) up to the newest id received before the cutoff (lastInboxIdBefore).
 * Below the watermark every row is dead or ignored (or gone), so a run reads the rows received between the last
 * complete run's cutoff and its own, not again every dead and ignored row kept before the cutoff (test/plans,
 * docs/scale.md). A run that completes the walk raises the watermark (advancePruneWatermark), never past a row pending
 * at its start or a processed row it kept; a trigger lowers it below any row that goes back to pending or processed
 * (a replay). Work stops early when `shouldStop()` says so (a time budget, a shutdown): the next run continues, from
 * the stored watermark.
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
    /** Called after each batch, awaited: the next batch starts once it resolves. */
    onBatch?: (r: PruneResult) => unknown;
  },
): Promise<PruneResult> {
  const result: PruneResult = { processed: 0, deadOrIgnored: 0, quarantine: 0, batches: 0, complete: false };
  const processedCutoff = new Date(p.now.getTime() - p.processedDays * DAY);
  const deadCutoff = new Date(p.now.getTime() - p.deadDays * DAY);
  const quarantineCutoff = new Date(p.now.getTime() - p.quarantineDays * DAY);
  // Read before the walk: a row pending now may be marked processed after the walk passed its id, so the new
  // watermark stays below the oldest row pending at the start.
  const start = await readPruneStart(sql);
  const maxId = await lastInboxIdBefore(sql, processedCutoff);
  let afterId = start.processedAfterId;
  let firstKeptId: number | null = null;
  const done = (n: number) => ({ deleted: n, done: n < p.batchSize });
  const steps: {
    key: 'processed' | 'deadOrIgnored' | 'quarantine';
    run: () => Promise<{ deleted: number; done: boolean }>;
    finish?: () => Promise<unknown>;
  }[] = [
    {
      key: 'processed',
      run: async () => {
        if (maxId === null) return { deleted: 0, done: true };
        const batch = await deleteProcessedBatch(sql, { before: processedCutoff, limit: p.batchSize, afterId, maxId });
        afterId = batch.lastId;
        firstKeptId ??= batch.firstKeptId;
        return { deleted: batch.deleted, done: batch.scanned < p.batchSize };
      },
      // The walk reached maxId: below the new watermark every row is now dead or ignored (or gone), except the
      // pending rows of the start and the processed ones it kept for being newer than the cutoff.
      finish: async () => {
        if (maxId === null) return;
        const below = (id: number | null) => (id === null ? maxId : id - 1);
        const to = Math.min(maxId, below(start.minPendingId), below(firstKeptId));
        await advancePruneWatermark(sql, { to, reopened: start.reopened });
      },
    },
    // One status per step: each is then a range of inbox_events_finished_idx (status, received_at).
    { key: 'deadOrIgnored', run: async () => done(await deleteInboxBatch(sql, 'dead', deadCutoff, p.batchSize)) },
    { key: 'deadOrIgnored', run: async () => done(await deleteInboxBatch(sql, 'ignored', deadCutoff, p.batchSize)) },
    { key: 'quarantine', run: async () => done(await deleteQuarantineBatch(sql, quarantineCutoff, p.batchSize)) },
    { key: 'quarantine', run: async () => done(await deleteQuarantineCountsBatch(sql, quarantineCutoff, p.batchSize)) },
  ];
  for (const step of steps) {
    for (;;) {
      if (p.shouldStop?.()) return result;
      const r = await step.run();
      result[step.key] += r.deleted;
      result.batches++;
      await p.onBatch?.(result);
      if (r.done) break;
    }
    await step.finish?.();
  }
  await deleteEmptyCounters(sql);
  result.complete = true;
  return result;
}

export interface PruneStart {
  /** The watermark: every inbox row with an id at or below it is dead or ignored (or gone). */
  processedAfterId: number;
  /** Rows the trigger saw go back to pending or processed, counted (advancePruneWatermark compares it). */
  reopened: number;
  /** The oldest pending row's id (null: none). */
  minPendingId: number | null;
}

/**
 * Where a prune run's walk of processed rows starts, and the oldest pending row, in one statement (one snapshot): a
 * read of the one-row inbox_prune_state and a probe of the pending index. Without the state row (deleted by hand) the
 * watermark reads as 0 and advancePruneWatermark stores nothing: each run walks from the first id, as before 0012.
 */
export async function readPruneStart(sql: Sql): Promise<PruneStart> {
  const [row] = await sql<{ after_id: string | null; reopened: string | null; min_pending: string | null }[]>`
    select s.processed_after_id as after_id, s.reopened, p.min_pending
      from (select min(id) as min_pending from inbox_events where status = 'pending') p
      left join inbox_prune_state s on s.id`;
  return {
    processedAfterId: Number(row.after_id ?? 0),
    reopened: Number(row.reopened ?? 0),
    minPendingId: row.min_pending === null ? null : Number(row.min_pending),
  };
}

/**
 * Raises the watermark to `to` (never lowers it), unless a row went back to pending or processed since the run read
 * `reopened` (readPruneStart): that row may lie below `to`, behind the walk, and only the next run may pass it. One
 * statement on the one-row table. Returns whether it stored.
 *
 * Concurrency: the comparison is made on the row's latest version (an UPDATE waits for the transaction of a trigger
 * that is raising the count, then checks again), so a store never hides a reopen that committed during its run; a
 * reopen after the store lowers the stored value itself. Two runs at once (two workers, the ops CLI) each store a
 * value that holds on its own (the rows below it they did not delete are dead or ignored, or the walk kept them out
 * of it), so the greater of the two holds too.
 */
export async function advancePruneWatermark(sql: Sql, p: { to: number; reopened: number }): Promise<boolean> {
  const rows = await sql`
    update inbox_prune_state set processed_after_id = greatest(processed_after_id, ${p.to}::bigint)
     where id and reopened = ${p.reopened}::bigint
    returning 1`;
  return rows.length > 0;
}

/**
 * Deletes the dead-and-ignored counters (inbox_finished_counts, kept by triggers) that fell to zero: keys whose rows
 * were pruned or replayed. One statement, through the index of the counters at zero (0014).
 */
export async function deleteEmptyCounters(sql: Sql): Promise<number> {
  // Skipping the counters another statement holds (a mark raising one, another run's delete): this one never waits,
  // so it cannot deadlock with the triggers that update counters in their rows' order; what it skips, a later run
  // deletes.
  const rows = await sql`
    delete from inbox_finished_counts where ctid = any(array(
      select ctid from inbox_finished_counts where count = 0 for update skip locked))
    returning 1`;
  return rows.length;
}

/**
 * Looks at the next `limit` processed inbox rows with ids in (`afterId`, `maxId`], oldest id first, and deletes those
 * received before `before`. Returns how many it deleted, how many it looked at (`scanned`: fewer than `limit` means
 * the range is done), the last id looked at (`afterId` when none: the next batch starts after it) and the lowest id
 * it kept for being received at or after `before` (`firstKeptId`, null: none; ids and received_at may disagree near
 * the cutoff, received_at being the inserting transaction's start): the watermark must stay below it. `maxId`
 * (lastInboxIdBefore) bounds the batch that finds fewer than `limit`: without it, that batch read every newer row.
 */
export async function deleteProcessedBatch(
  sql: Sql,
  p: { before: Date; limit: number; afterId: number; maxId: number },
): Promise<{ deleted: number; scanned: number; lastId: number; firstKeptId: number | null }> {
  const [row] = await sql<{ deleted: number; scanned: number; last: string | null; first_kept: string | null }[]>`
    with seen as (
      select id, received_at < ${p.before}::timestamptz as old from inbox_events
       where id > ${p.afterId}::bigint and id <= ${p.maxId}::bigint and status = 'processed'
       order by id
       limit ${p.limit}::int),
    deleted as (
      -- By primary key (= any of an array): rows are locked in id order, so two runs at once wait for each other rather
      -- than deadlock (an id in (subquery) is hashed, and two runs locked their shared rows in hash order).
      delete from inbox_events where id = any(array(select id from seen where old))
      returning id)
    select (select count(*)::int from deleted) as deleted, (select count(*)::int from seen) as scanned,
           (select max(id) from seen) as last, (select min(id) from seen where not old) as first_kept`;
  return {
    deleted: row.deleted,
    scanned: row.scanned,
    lastId: row.last === null ? p.afterId : Number(row.last),
    firstKeptId: row.first_kept === null ? null : Number(row.first_kept),
  };
}

/** Deletes at most `limit` inbox rows of `status` (dead or ignored) received before `before`. Returns how many. */
export async function deleteInboxBatch(sql: Sql, status: 'dead' | 'ignored', before: Date, limit: number): Promise<number> {
  // The status as a literal: with both statuses (or a parameter), the planner took the status condition for the
  // index's own predicate and read the whole index for the received_at bound (92 buffers at 1M shipments, 4 at 1%).
  const rows = await sql`
    delete from inbox_events where id = any(array(
      select id from inbox_events
       where ${status === 'dead' ? sql`status = 'dead'` : sql`status = 'ignored'`} and received_at < ${before}::timestamptz
       order by received_at
       limit ${limit}::int))
    returning 1`;
  return rows.length;
}

/** Deletes at most `limit` quarantine rows received before `before`. Returns how many. */
export async function deleteQuarantineBatch(sql: Sql, before: Date, limit: number): Promise<number> {
  const rows = await sql`
    delete from quarantine where id = any(array(
      select id from quarantine where received_at < ${before}::timestamptz order by received_at limit ${limit}::int))
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
