import type { Queryable } from '../db/client.js';
import type { Drift } from './normalise.js';

/**
 * Adds a chunk's drift counts to `payload_drift` (topic, field, problem), in one statement, rows in key order. The
 * normaliser reports a field it does not know (not in the OpenAPI schema of the resource) or cannot read (present, not
 * of the type the schema gives): a payload change shows here, and in `ops status` and /metrics, the day it happens.
 */
export function recordPayloadDrift(sql: Queryable, rows: readonly (Drift & { count: number })[]) {
  const sorted = [...rows].sort((a, b) =>
    a.topic !== b.topic ? (a.topic < b.topic ? -1 : 1) : a.field !== b.field ? (a.field < b.field ? -1 : 1) : a.problem < b.problem ? -1 : 1,
  );
  return sql`
    insert into payload_drift as d (topic, field, problem, count)
    select x.topic, x.field, x.problem, x.n
      from unnest(${sorted.map((r) => r.topic.slice(0, 200))}::text[], ${sorted.map((r) => r.field.slice(0, 200))}::text[],
                  ${sorted.map((r) => r.problem)}::text[], ${sorted.map((r) => r.count)}::bigint[]) as x(topic, field, problem, n)
     order by 1, 2, 3
    on conflict (topic, field, problem) do update set count = d.count + excluded.count, last_seen_at = now()`;
}
