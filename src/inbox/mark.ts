import type { Queryable } from '../apply/upserts.js';

export const FinalStatus = { processed: 'processed', dead: 'dead', ignored: 'ignored' } as const;
export type FinalStatus = (typeof FinalStatus)[keyof typeof FinalStatus];

export interface InboxMark {
  id: number;
  status: FinalStatus;
  /** Why it is dead or ignored (never a secret: a reason of ours or a PostgreSQL message). */
  error: string | null;
}

export interface PollCatch {
  sourceId: string;
  stream: string;
  count: number;
}

/**
 * Marks inbox rows processed, dead or ignored (attempts + 1, processed_at now), in one statement. Rows must be locked
 * by the caller's transaction (claimed). Locks nothing another chunk shares: the drain marks before its upserts, so a
 * concurrent chunk waiting on its entity rows does not also wait for this.
 */
export function markInboxEvents(sql: Queryable, marks: readonly InboxMark[]) {
  return sql`
    update inbox_events e
       set status = x.status, last_error = x.error, attempts = e.attempts + 1, processed_at = now()
      from unnest(${marks.map((m) => m.id)}::bigint[], ${marks.map((m) => m.status)}::text[],
                  ${marks.map((m) => m.error)}::text[]) as x(id, status, error)
     where e.id = x.id`;
}

/**
 * Adds poll catches to `poll_cursors.catches` (creating the cursor row if missing; a source that does not exist is
 * skipped), in one statement. Cursor rows are locked in key order.
 */
export function addPollCatches(sql: Queryable, catches: readonly PollCatch[]) {
  const sorted = [...catches].sort((a, b) =>
    a.sourceId === b.sourceId ? (a.stream < b.stream ? -1 : 1) : a.sourceId < b.sourceId ? -1 : 1,
  );
  return sql`
    insert into poll_cursors as pc (source_id, stream, catches)
    select x.source_id, x.stream, x.n
      from unnest(${sorted.map((c) => c.sourceId)}::text[], ${sorted.map((c) => c.stream)}::text[],
                  ${sorted.map((c) => c.count)}::bigint[]) as x(source_id, stream, n)
     where exists (select 1 from sources s where s.id = x.source_id)
     order by 1, 2
    on conflict (source_id, stream) do update set catches = pc.catches + excluded.catches, updated_at = now()`;
}
