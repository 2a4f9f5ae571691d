import type { Queryable } from '../db/client.js';

/** A claimed inbox row, as the drain reads it. */
export interface InboxRow {
  id: number;
  sourceId: string;
  topic: string | null;
  body: string;
  /** As PostgreSQL prints timestamptz (text: no precision lost on the way). */
  eventTime: string | null;
  receivedAt: string;
  via: string;
}

interface ClaimedRow {
  id: string;
  source_id: string;
  topic: string | null;
  body: string;
  event_time: string | null;
  received_at: string;
  via: string;
}

const toInboxRow = (r: ClaimedRow): InboxRow => ({
  id: Number(r.id),
  sourceId: r.source_id,
  topic: r.topic,
  body: r.body,
  eventTime: r.event_time,
  receivedAt: r.received_at,
  via: r.via,
});

export interface ClaimedChunk {
  rows: InboxRow[];
  /**
   * True when the byte bound, not the count or the inbox, ended the chunk: rows past it were locked and left pending,
   * so the inbox may hold more (the caller must not take a short chunk for an empty inbox).
   */
  cutByBytes: boolean;
}

/**
 * Which sources a claim serves (docs/drain.md "Fairness"). A source with at most `perSource` pending rows is light, one
 * with more is backlogged (a backfill, a catch-up, a burst):
 * - `bulk`: the backlogged sources only; chunks of `size` shared between them;
 * - `express`: light sources only: their rows are few, so the chunk is small and quick, and a fresh webhook rides in
 *   the next one whatever another source's backlog.
 * A light source's events are the express lane's alone: while no source is backlogged, bulk finds nothing, and a
 * burst that the express lane does not keep up with makes its sources backlogged, which bulk then serves.
 * While a source is backlogged, express and bulk never take the same source's rows, so one lane never waits for the
 * other's row locks (a source's events share entity rows; two sources' never do). `perSource` 0: every source is
 * backlogged, bulk serves them all (the default).
 */
export interface ClaimLane {
  lane: 'bulk' | 'express';
  perSource: number;
}

/**
 * Locks up to `size` pending inbox rows of the lane's sources until the transaction ends, shared fairly between them,
 * and returns those whose bodies fit in `maxBytes` together (always at least the first: an event larger than the bound
 * is applied alone). Must run inside a transaction. One statement: sizes come from `octet_length(body)`, which reads
 * the stored length without detoasting, so bodies past the bound are never loaded.
 *
 * Fairness: each source served gets a share of `ceil(size / sources)` slots, filled with its oldest rows (locked
 * first); the slots the shares leave empty go to the oldest pending rows of those sources (locked second, scanning past
 * rows other drains hold). Express needs no filler: its sources hold at most `perSource` rows each, so every one of them
 * is a candidate, taken in turns (each source's first row, then each one's second...); a filler scanning the pending
 * ids would read through the backlogged sources' rows. The sources with pending rows are found by a skip scan of the
 * pending (source_id, id) index, one probe each; each is classed by counting at most `perSource + 1` entries of it, and
 * each share is a range of it. Rows come back in id order (applying a chunk does not depend on order).
 *
 * `SKIP LOCKED`: concurrent drains take disjoint chunks instead of queueing behind each other; so it may return fewer
 * than asked (or none) while other drains hold rows. A bulk chunk of fewer than `size` without `cutByBytes` means its
 * sources held no more claimable rows (the filler scans past locked rows); an express chunk is short by design.
 */
/** Above every inbox id (bigserial): the upper bound of a source's range in the (source_id, id) index. */
const MAX_ID = '9223372036854775807';

export async function claimInboxChunk(
  sql: Queryable,
  size: number,
  maxBytes = Number.MAX_SAFE_INTEGER,
  lane: ClaimLane = { lane: 'bulk', perSource: 0 },
): Promise<ClaimedChunk> {
  const express = lane.lane === 'express';
  const bound = lane.perSource;
  const rows = await sql<(ClaimedRow & { locked: number })[]>`
    with locked as (
      -- Scans run newest first wherever the order allows: a drained source's processed rows stay in the partial index
      -- as dead entries at the old end of its range until vacuum, and an oldest-first probe would step over them all.
      -- Each per-source scan reads the (source_id, id) index from the source's end of its range, bounded by a row
      -- comparison, and keeps its own source's rows after the limit: only that index gives the order. With
      -- source_id = x the planner may walk the pending id index instead and drop every other source's rows (it did on
      -- PostgreSQL 17 in the plan test, at random with the sample ANALYZE took), and a range of one value was planned
      -- as a bitmap scan of the whole source and a sort.
      with recursive active(source_id) as (
        (select source_id from inbox_events where status between 'pending' and 'pending' order by source_id desc limit 1)
        union all
        select (select e.source_id from inbox_events e
                 where e.status between 'pending' and 'pending' and e.source_id < a.source_id
                 order by e.source_id desc limit 1)
          from active a
         where a.source_id is not null
      ), classed as (
        -- Each active source's pending rows, counted up to bound + 1: light is 1..bound, backlogged bound + 1.
        select a.source_id, pending.n
          from active a
         cross join lateral (
           select count(*) filter (where c.source_id = a.source_id) as n
             from (select e.source_id from inbox_events e
                    where e.status between 'pending' and 'pending' and (e.source_id, e.id) <= (a.source_id, ${MAX_ID}::bigint)
                    order by e.source_id desc, e.id desc
                    limit ${bound + 1}) c
         ) pending
         where a.source_id is not null
      ), served as (
        select source_id from classed
         where ${
           express
             ? sql`n <= ${bound}`
             : sql`n > ${bound}`
         }
      ), share as (
        select ceil(${size}::numeric / greatest(count(*), 1))::int as n from served
      ), candidates as (
        select p.id, p.turn
          from served a
         cross join lateral (
           select x.id, row_number() over (order by x.id) as turn
             from (select e.id, e.source_id from inbox_events e
                    -- A light source's rows all fit: newest first finds them without passing its drained ones.
                    where e.status between 'pending' and 'pending' and ${
                      express
                        ? sql`(e.source_id, e.id) <= (a.source_id, ${MAX_ID}::bigint) order by e.source_id desc, e.id desc limit ${bound}`
                        : sql`(e.source_id, e.id) > (a.source_id, 0::bigint) order by e.source_id, e.id limit (select n from share)`
                    }) x
            where x.source_id = a.source_id
         ) p
         order by p.turn, p.id
         limit ${size}
      ), fair as (
        -- By primary key (= any of an array), as the final read: a join with a CTE may be planned as a scan of the inbox.
        -- The status is checked after the lock, not in the scan: a status clause lets the planner read a pending index
        -- whole instead (it did, with statistics that saw no pending row); a row another drain finished meanwhile is
        -- locked and left out.
        select id, status, octet_length(body)::bigint as bytes
          from inbox_events
         where id = any(array(select id from candidates))
           for update skip locked
      ), fill as (
        select id, octet_length(body)::bigint as bytes, ${size}::bigint + 1 as turn
          from inbox_events
         where status = 'pending' and source_id = any(array(select source_id from served))
           and id not in (select id from fair)
         order by id
         limit ${express ? 0 : sql`(select ${size} - count(*) from fair where status = 'pending')`}
           for update skip locked
      )
      select f.id, f.bytes, c.turn from fair f join candidates c on c.id = f.id where f.status = 'pending'
      union all
      select * from fill
    ), sized as (
      select id, sum(bytes) over (order by turn, id) as total, row_number() over (order by turn, id) as n from locked
    )
    select e.id, e.source_id, e.topic, e.body, e.event_time::text, e.received_at::text, e.via,
           (select count(*) from locked)::int as locked
      from inbox_events e
     where e.id = any(array(select id from sized where n = 1 or total <= ${maxBytes}::bigint))
     order by e.id`;
  return { rows: rows.map(toInboxRow), cutByBytes: rows.length > 0 && rows.length < rows[0].locked };
}

/** The same, for given ids (bisection re-claims halves of a failed chunk): only those still pending and unlocked. */
export async function claimInboxEventsById(sql: Queryable, ids: readonly number[]): Promise<InboxRow[]> {
  // The status is checked after the lock, as the chunk's claim does: by primary key whatever the statistics.
  const rows = await sql<(ClaimedRow & { status: string })[]>`
    select id, status, source_id, topic, body, event_time::text, received_at::text, via
      from inbox_events
     where id = any(${ids as number[]}::bigint[])
     order by id
       for update skip locked`;
  return rows.filter((r) => r.status === 'pending').map(toInboxRow);
}
