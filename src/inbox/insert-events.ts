import { createHash } from 'node:crypto';
import type { Queryable } from '../db/client.js';
import type { InboxVia } from '../db/schema.js';

export interface NewInboxEvent {
  sourceId: string;
  /** `webhook-id` for webhooks; a deterministic id for polled events. The idempotency key within the source. */
  eventId: string;
  topic: string | null;
  /** The body exactly as received. */
  body: string;
  /** Delivery headers worth keeping (never a signature). */
  headers: Record<string, string> | null;
  /** ISO 8601 with a zone, already validated (see parseEventTime); null when the event carries none. */
  eventTime: string | null;
  via: (typeof InboxVia)[keyof typeof InboxVia];
}

export interface InboxInsertResult {
  /** inbox_events.id of the stored row (the first copy's row for a duplicate). */
  id: number;
  /** True for the one input row that created the event; false for every duplicate (in this batch or earlier). */
  inserted: boolean;
  /** False for a duplicate whose body differs from the stored one (the stored body stays); true otherwise. */
  sameBody: boolean;
}

const keyOf = (r: { sourceId: string; eventId: string }) => `${r.sourceId}\u0000${r.eventId}`;

/**
 * Stores events idempotently in one statement and returns one result per input row, in input order.
 *
 * Guarantees: an event is stored once per (source, event id); every further copy, in this batch or a later one,
 * increments `duplicate_count` by one and changes nothing else (the first body wins); its result says whether its body
 * equals the stored one (`sameBody`: compared by md5 digest, only for duplicates). Keys are deduplicated here first
 * (PostgreSQL refuses to touch a row twice in one statement) and sorted, so concurrent batches lock rows in the same
 * order and cannot deadlock. Durable when it resolves (autocommit).
 */
export async function insertInboxEvents(sql: Queryable, rows: readonly NewInboxEvent[]): Promise<InboxInsertResult[]> {
  if (rows.length === 0) return [];
  const firsts = new Map<string, { row: NewInboxEvent; copies: number }>();
  for (const row of rows) {
    const k = keyOf(row);
    const seen = firsts.get(k);
    if (seen) seen.copies++;
    else firsts.set(k, { row, copies: 1 });
  }
  const unique = [...firsts.values()].sort((a, b) =>
    a.row.sourceId === b.row.sourceId
      ? compare(a.row.eventId, b.row.eventId)
      : compare(a.row.sourceId, b.row.sourceId),
  );
  const col = <T>(f: (u: { row: NewInboxEvent; copies: number }) => T) => unique.map(f);

  // headers travel as text[] and are cast per element: a JS string bound as jsonb would be stored as a JSON string.
  const stored = await sql<{ id: string; source_id: string; event_id: string; inserted: boolean; stored_md5: string | null }[]>`
    insert into inbox_events as e (source_id, event_id, topic, body, headers, event_time, via, duplicate_count)
    select u.source_id, u.event_id, u.topic, u.body, u.headers::jsonb, u.event_time::timestamptz, u.via, u.copies - 1
      from unnest(${col((u) => u.row.sourceId)}::text[], ${col((u) => u.row.eventId)}::text[],
                  ${col((u) => u.row.topic)}::text[], ${col((u) => u.row.body)}::text[],
                  ${col((u) => (u.row.headers ? JSON.stringify(u.row.headers) : null))}::text[],
                  ${col((u) => u.row.eventTime)}::text[], ${col((u) => u.row.via)}::text[],
                  ${col((u) => u.copies)}::int[])
           as u(source_id, event_id, topic, body, headers, event_time, via, copies)
    on conflict (source_id, event_id) do update set duplicate_count = e.duplicate_count + excluded.duplicate_count + 1
    returning e.id, e.source_id, e.event_id, (e.xmax = 0) as inserted,
              case when e.xmax = 0 then null else md5(e.body) end as stored_md5`;

  // A duplicate's body is compared with the stored one by digest (only duplicates carry one back); a copy inside this
  // batch is compared with the batch's first copy, which is what was stored or compared.
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  const byKey = new Map<string, { id: number; inserted: boolean; storedMd5: string | null }>();
  for (const s of stored)
    byKey.set(keyOf({ sourceId: s.source_id, eventId: s.event_id }), { id: Number(s.id), inserted: s.inserted, storedMd5: s.stored_md5 });
  return rows.map((row) => {
    const k = keyOf(row);
    const hit = byKey.get(k)!;
    const first = firsts.get(k)!.row;
    const sameBody = row === first ? hit.storedMd5 === null || hit.storedMd5 === md5(row.body) : row.body === first.body;
    // Only the first copy of a newly inserted key counts as inserted; later copies are duplicates.
    const result = { id: hit.id, inserted: hit.inserted, sameBody };
    if (hit.inserted) byKey.set(k, { ...hit, inserted: false });
    return result;
  });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
