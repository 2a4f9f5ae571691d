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

/**
 * Locks up to `size` pending inbox rows, oldest first, until the transaction ends. Must run inside a transaction.
 *
 * `SKIP LOCKED`: concurrent drains take disjoint chunks instead of queueing behind each other; so it may return fewer
 * than asked (or none) while other drains hold rows, and fewer than `size` means the inbox held no more claimable rows.
 * Served by the partial index on pending ids (without it the drain was 4-6x slower: docs/drain.md).
 */
export async function claimInboxChunk(sql: Queryable, size: number): Promise<InboxRow[]> {
  const rows = await sql<ClaimedRow[]>`
    select id, source_id, topic, body, event_time::text, received_at::text, via
      from inbox_events
     where status = 'pending'
     order by id
     limit ${size}
       for update skip locked`;
  return rows.map(toInboxRow);
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
