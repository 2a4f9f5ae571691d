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
 * Locks up to `size` pending inbox rows, oldest first, until the transaction ends, and returns those whose bodies fit in
 * `maxBytes` together (always at least the first: an event larger than the bound is applied alone). Must run inside a
 * transaction. One statement: sizes come from `octet_length(body)`, which reads the stored length without detoasting,
 * so bodies past the bound are never loaded.
 *
 * `SKIP LOCKED`: concurrent drains take disjoint chunks instead of queueing behind each other; so it may return fewer
 * than asked (or none) while other drains hold rows, and fewer than `size` without `cutByBytes` means the inbox held no
 * more claimable rows. Served by the partial index on pending ids (without it the drain was 4-6x slower: docs/drain.md).
 */
export async function claimInboxChunk(sql: Queryable, size: number, maxBytes = Number.MAX_SAFE_INTEGER): Promise<ClaimedChunk> {
  const rows = await sql<(ClaimedRow & { locked: number })[]>`
    with locked as (
      select id, octet_length(body)::bigint as bytes
        from inbox_events
       where status = 'pending'
       order by id
       limit ${size}
         for update skip locked
    ), sized as (
      select id, sum(bytes) over (order by id) as total, row_number() over (order by id) as n from locked
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
