import { SECOND } from '../config.js';
import type { Queryable } from '../db/client.js';

/**
 * A resource the event names but cannot stand for (an order-centric event without a shipment id, a body without a
 * status): wharf fetches it by id through the API and applies what it fetched through the inbox (resolve.ts).
 */
export interface ResolveRequest {
  kind: ResolveKind;
  id: number;
  sourceId: string;
  inboxId: number;
  /** Why the body itself was not applied, for the dead letter if the fetch can never succeed. */
  reason: string;
}
export type ResolveKind = 'order' | 'shipment' | 'return';

/**
 * The queue of resources to fetch by id (`resolve_requests`), filled by the drain inside a chunk's transaction: a
 * delivery that names an order, shipment or return but cannot stand for it (an order-centric event, a body without a
 * status) becomes a request instead of a dead letter. Requests for one resource coalesce: deliveries within
 * RESOLVE_COALESCE_MS of the first cost one fetch (src/poll/resolve.ts).
 */

/** The worker task that fetches a source's due requests (src/worker/tasks/resolve_resources.ts). */
export const RESOLVE_TASK = 'resolve_resources';
/** How long the first request for a resource waits for others to join it. */
export const RESOLVE_COALESCE_MS = 2 * SECOND;

export const resolveJobName = (sourceId: string): string => `resolve:${sourceId}`;

/**
 * Adds requests (merging per source, kind and id: the inbox ids are kept, the due time is the first's), then queues
 * one resolve job per source at its earliest due time (job key and queue `resolve:<source>`: one pending, one running).
 * One statement; rows locked in key order.
 */
export function queueResolves(sql: Queryable, requests: readonly ResolveRequest[]) {
  const merged = new Map<string, { r: ResolveRequest; inboxIds: number[] }>();
  for (const r of requests) {
    const k = `${r.sourceId}\u0000${r.kind}\u0000${r.id}`;
    const held = merged.get(k);
    if (held) held.inboxIds.push(r.inboxId);
    else merged.set(k, { r, inboxIds: [r.inboxId] });
  }
  const rows = [...merged.values()].sort((a, b) =>
    a.r.sourceId !== b.r.sourceId ? (a.r.sourceId < b.r.sourceId ? -1 : 1) : a.r.kind !== b.r.kind ? (a.r.kind < b.r.kind ? -1 : 1) : a.r.id - b.r.id,
  );
  return sql`
    with x as (
      select * from unnest(${rows.map((m) => m.r.sourceId)}::text[], ${rows.map((m) => m.r.kind)}::text[],
                           ${rows.map((m) => m.r.id)}::bigint[], ${rows.map((m) => m.inboxIds.join(','))}::text[],
                           ${rows.map((m) => m.r.reason)}::text[])
        as x(source_id, kind, resource_id, inbox_ids, reason)
       where exists (select 1 from sources s where s.id = x.source_id)
    ), up as (
      insert into resolve_requests as q (source_id, kind, resource_id, inbox_ids, reason, due_at)
      select x.source_id, x.kind, x.resource_id, string_to_array(x.inbox_ids, ',')::bigint[], x.reason,
             now() + ${RESOLVE_COALESCE_MS}::float8 * interval '1 millisecond'
        from x
       order by 1, 2, 3
      on conflict (source_id, kind, resource_id) do update
         set inbox_ids = q.inbox_ids || excluded.inbox_ids, requests = q.requests + 1
      returning q.source_id, q.due_at
    )
    select j.id from (select source_id, min(due_at) as due_at from up group by source_id) s
     cross join lateral graphile_worker.add_job(${RESOLVE_TASK}, json_build_object('sourceId', s.source_id),
         queue_name := 'resolve:' || s.source_id, run_at := s.due_at, max_attempts := 10,
         job_key := 'resolve:' || s.source_id, job_key_mode := 'preserve_run_at') j`;
}
