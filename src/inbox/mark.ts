import type { Queryable } from '../db/client.js';

export const FinalStatus = { processed: 'processed', dead: 'dead', ignored: 'ignored' } as const;
export type FinalStatus = (typeof FinalStatus)[keyof typeof FinalStatus];

export interface InboxMark {
  id: number;
  status: FinalStatus;
  /** Why it is dead or ignored (never a secret: a reason of ours or a PostgreSQL message). */
  error: string | null;
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
 * Changes the final status of rows this transaction already marked (the drain's refusals for ownership: processed
 * → dead, with the reason), without counting another attempt. One statement; rows must be locked by the caller.
 */
export function remarkInboxEvents(sql: Queryable, marks: readonly InboxMark[]) {
  return sql`
    update inbox_events e
       set status = x.status, last_error = x.error
      from unnest(${marks.map((m) => m.id)}::bigint[], ${marks.map((m) => m.status)}::text[],
                  ${marks.map((m) => m.error)}::text[]) as x(id, status, error)
     where e.id = x.id`;
}
