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
 * Locks up to `size` pending inbox rows, shared fairly between sources, until the transaction ends, and returns those
 * whose bodies fit in `maxBytes` together (always at least the first: an event larger than the bound is applied
 * alone). Must run inside a transaction. One statement: sizes come from `octet_length(body)`, which reads the stored
 * length without detoasting, so bodies past the bound are never loaded.
 *
 * Fairness (docs/drain.md): each source with pending rows gets a share of `ceil(size / active sources)` slots, filled
 * with its oldest rows (locked first); the slots the shares leave empty go to the oldest pending rows of the whole inbox
 * (locked second, scanning past rows other drains hold, as before). So a source backfilling
 * 50,000 events takes what the others leave, and another source's fresh webhooks wait at most one chunk behind it,
 * whatever the backlog. The fair candidates are bounded (at most `size + active sources` ids): the active sources are
 * found by a skip scan of the pending (source_id, id) index, one probe each, and each share by a range of the same
 * index; the filler reads the pending id index. Rows come back in id order (applying a chunk does not depend on order).
 *
 * `SKIP LOCKED`: concurrent drains take disjoint chunks instead of queueing behind each other; so it may return fewer
 * than asked (or none) while other drains hold rows, and fewer than `size` without `cutByBytes` means the inbox held no
 * more claimable rows (the filler scans past locked rows, so an inbox with `size` claimable rows always fills a chunk).
 */
export async function claimInboxChunk(sql: Queryable, size: number, maxBytes = Number.MAX_SAFE_INTEGER): Promise<ClaimedChunk> {
  const rows = await sql<(ClaimedRow & { locked: number })[]>`
    with locked as (
      with recursive active(source_id) as (
        (select source_id from inbox_events where status = 'pending' order by source_id limit 1)
        union all
        select (select e.source_id from inbox_events e
                 where e.status = 'pending' and e.source_id > a.source_id
                 order by e.source_id limit 1)
          from active a
         where a.source_id is not null
      ), share as (
        select ceil(${size}::numeric / greatest(count(*), 1))::int as n from active where source_id is not null
      ), candidates as (
        select p.id, p.turn
          from active a
         cross join lateral (
           select e.id, row_number() over (order by e.id) as turn
             from inbox_events e
            where e.status = 'pending' and e.source_id = a.source_id
            order by e.id
            limit (select n from share)
         ) p
         where a.source_id is not null
      ), fair as (
        select e.id, octet_length(e.body)::bigint as bytes, c.turn
          from candidates c
          join inbox_events e on e.id = c.id
         where e.status = 'pending'
         order by c.turn, c.id
         limit ${size}
           for update of e skip locked
      ), fill as (
        select id, octet_length(body)::bigint as bytes, ${size}::bigint + 1 as turn
          from inbox_events
         where status = 'pending' and id not in (select id from fair)
         order by id
         limit (select ${size} - count(*) from fair)
           for update skip locked
      )
      select * from fair
      union all
      select * from fill
    ), sized as (
      select id, sum(bytes) over (order by turn, id) as total, row_number() over (order by turn, id) as n from locked
    )
    select e.id, e.source_id, e.topic, e.body, e.event_time::text, e.received_at::text, e.via,
           (select count(*) from locked)::int as locked
      from sized s
      join inbox_events e on e.id = s.id
     where s.n = 1 or s.total <= ${maxBytes}::bigint
     order by e.id`;
  return { rows: rows.map(toInboxRow), cutByBytes: rows.length > 0 && rows.length < rows[0].locked };
}

/** The same, for given ids (bisection re-claims halves of a failed chunk): only those still pending and unlocked. */
export async function claimInboxEventsById(sql: Queryable, ids: readonly number[]): Promise<InboxRow[]> {
  const rows = await sql<ClaimedRow[]>`
    select id, source_id, topic, body, event_time::text, received_at::text, via
      from inbox_events
     where id = any(${ids as number[]}::bigint[]) and status = 'pending'
     order by id
       for update skip locked`;
  return rows.map(toInboxRow);
}
