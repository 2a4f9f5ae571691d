import type { Queryable } from '../db/client.js';

export const FinalStatus = { processed: 'processed', dead: 'dead', ignored: 'ignored' } as const;
export type FinalStatus = (typeof FinalStatus)[keyof typeof FinalStatus];

export interface InboxMark {
  id: number;
  status: FinalStatus;
  /** Why it is dead or ignored (never a secret: a reason of ours or a PostgreSQL message). */
  error: string | null;
  /** The entities it concerns (src/apply/entity-keys.ts), stored for `ops explain`; null or absent: none. */
  keys?: readonly string[] | null;
}

/** Separates one row's keys in the mark's text parameter (a key holding it is never stored). */
export const KEY_SEPARATOR = '\u001f';

/**
 * Marks inbox rows processed, dead or ignored (attempts + 1, processed_at now), in one statement. Rows must be locked
 * by the caller's transaction (claimed). Locks nothing another chunk shares: the drain marks before its upserts, so a
 * concurrent chunk waiting on its entity rows does not also wait for this.
 *
 * Dead and ignored rows are counted by inbox_events' triggers (migration 0009) inside this statement: a processed
 * mark costs them a comparison. Each row's keys travel as one text joined by U+001F (arrays of arrays must be
 * rectangular) and replace the row's entity_keys.
 */
export function markInboxEvents(sql: Queryable, marks: readonly InboxMark[]) {
  return sql`
    update inbox_events e
       set status = x.status, last_error = x.error, attempts = e.attempts + 1, processed_at = now(),
           entity_keys = string_to_array(x.keys, ${KEY_SEPARATOR}::text)
      from unnest(${marks.map((m) => m.id)}::bigint[], ${marks.map((m) => m.status)}::text[],
                  ${marks.map((m) => m.error)}::text[],
                  ${marks.map((m) => (m.keys?.length ? m.keys.join(KEY_SEPARATOR) : null))}::text[]) as x(id, status, error, keys)
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
