import type { Queryable } from '../db/client.js';

/** Events that only polling brought, counted per source and stream (`poll_cursors.catches`): how far webhooks miss. */
export interface PollCatch {
  sourceId: string;
  stream: string;
  count: number;
  /** The version time (µs since the epoch) of each change caught: the day it counts for (src/poll/trust.ts). */
  eventUs: number[];
}

/**
 * Adds poll catches, in one statement: to `poll_cursors.catches` (creating the cursor row if missing), and per UTC
 * day of the change to `source_trust_days.catches` (trust.ts), leaving out changes older than the source itself (a
 * first poll's backfill of history no webhook was ever due for is not a webhook miss). A source that does not exist
 * is skipped. Each table's rows are locked in key order, and every chunk runs this one statement (one plan, so one
 * order between the two tables): two chunks wait for each other here, never deadlock.
 */
export function addPollCatches(sql: Queryable, catches: readonly PollCatch[]) {
  const each = catches.flatMap((c) => c.eventUs.map((us) => ({ sourceId: c.sourceId, stream: c.stream, us: Math.round(us) })));
  return sql`
    with x as (
      select x.source_id, x.stream, to_timestamp(x.us / 1e6::float8) as at, s.created_at
        from unnest(${each.map((c) => c.sourceId)}::text[], ${each.map((c) => c.stream)}::text[],
                    ${each.map((c) => c.us)}::bigint[]) as x(source_id, stream, us)
        join sources s on s.id = x.source_id),
    days as (
      insert into source_trust_days as d (source_id, day, catches)
      select source_id, (at at time zone 'UTC')::date, count(*) from x where at >= created_at
       group by 1, 2
       order by 1, 2
      on conflict (source_id, day) do update set catches = d.catches + excluded.catches, updated_at = now())
    insert into poll_cursors as pc (source_id, stream, catches)
    select source_id, stream, count(*) from x
     group by 1, 2
     order by 1, 2
    on conflict (source_id, stream) do update set catches = pc.catches + excluded.catches, updated_at = now()`;
}
