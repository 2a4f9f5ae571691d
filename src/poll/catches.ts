import type { Queryable } from '../db/client.js';

/** Events that only polling brought, counted per source and stream (`poll_cursors.catches`): how far webhooks miss. */
export interface PollCatch {
  sourceId: string;
  stream: string;
  count: number;
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
