import type { Sql } from '../db/client.js';

/**
 * The ops page's time series. Once a minute (cron task sample_ops_metrics) the worker writes one ops_samples row for
 * the window since the previous sample, and per source one ops_source_samples row when it received events or its polls
 * caught some; and it adds the events applied in the window to source_trust_days (per source and UTC day of the
 * change: the webhook-trust share's denominator, src/poll/trust.ts, from rows this sample reads anyway). The series
 * live in the database, so charts survive restarts and are the same whichever process serves
 * the page; with several workers graphile-worker runs a cron line once per minute, and the sample itself is serialised
 * by an advisory lock and keyed by the window's end, so a second run of the same minute writes nothing.
 *
 * Every read is bounded and index-friendly, so a sample stays cheap on a large inbox:
 * - depth and dead counts stop at SAMPLE_COUNT_CAP; the oldest pending row is read through the pending index;
 * - arrivals are the rows above the previous sample's highest id (less a margin for late commits), filtered by
 *   received_at in the window (each row falls in exactly one window);
 * - events applied and the webhook -> applied lag are the rows processed in the window, found in the id range above the
 *   previous sample's lowest pending id (what is processed now was pending then, or arrived since), at most
 *   SAMPLE_SCAN_MAX_IDS ids. A replayed event (an old id set back to pending and applied within one minute) can escape
 *   this count; the drain's own counters (/metrics) still see it.
 */

export const SAMPLE_COUNT_CAP = 1_000_000;
/** At most this many inbox ids are read for one window's applied events and lag. */
export const SAMPLE_SCAN_MAX_IDS = 2_000_000;
/** Ids below the previous sample's highest that are looked at again: rows that committed after that sample read. */
const LATE_COMMIT_MARGIN_IDS = 10_000;
/** A window never reaches further back than this (after a long stop, the first sample covers one hour). */
const MAX_WINDOW_MS = 60 * 60 * 1000;
const SAMPLE_LOCK = 7_202_611_41;

export interface OpsSampleResult {
  /** The window's end (null: nothing to sample, this minute is done already). */
  at: Date | null;
  windowMs: number;
  pending: number;
  applied: number;
  sources: number;
  pruned: number;
}

interface AppliedPerSource {
  sourceId: string;
  day: string;
  webhook: number;
  poll: number;
  replay: number;
}

const minuteFloor = (d: Date) => new Date(Math.floor(d.getTime() / 60_000) * 60_000);

/**
 * Samples the window [previous sample's end, minute of `now`) and prunes samples older than `retentionDays`, in one
 * transaction. Idempotent: a second call within the same minute finds an empty window and writes nothing.
 */
export async function sampleOpsMetrics(sql: Sql, p: { now: Date; retentionDays: number }): Promise<OpsSampleResult> {
  const end = minuteFloor(p.now);
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${SAMPLE_LOCK})`;
    const [prev] = await tx<{ at: Date; maxInboxId: string; scanFromId: string }[]>`
      select at, max_inbox_id::text as "maxInboxId", scan_from_id::text as "scanFromId"
        from ops_samples order by at desc limit 1`;
    const start = new Date(Math.max(prev ? prev.at.getTime() : end.getTime() - 60_000, end.getTime() - MAX_WINDOW_MS));
    const pruned = await pruneOpsSamples(tx as unknown as Sql, new Date(end.getTime() - p.retentionDays * 86_400_000));
    if (start >= end) return { at: null, windowMs: 0, pending: 0, applied: 0, sources: 0, pruned };

    const [now] = await tx<
      { pending: number; oldest: number | null; dead: number; maxId: string; minPendingId: string | null }[]
    >`
      select (select count(*) from (select 1 from inbox_events where status = 'pending' limit ${SAMPLE_COUNT_CAP}::int) x)::int as pending,
             (select extract(epoch from ${end}::timestamptz - received_at)::float8 from inbox_events
               where status = 'pending' order by id limit 1) as oldest,
             (select coalesce(sum(count), 0) from inbox_finished_counts where status = 'dead')::int as dead,
             coalesce((select max(id) from inbox_events), 0)::text as "maxId",
             (select id from inbox_events where status = 'pending' order by id limit 1)::text as "minPendingId"`;
    const maxId = Number(now.maxId);
    // First sample: look back over the last ids only.
    const arrivalsFrom = Math.max(0, (prev ? Number(prev.maxInboxId) : maxId - 100_000) - LATE_COMMIT_MARGIN_IDS);
    const scanFrom = prev ? Number(prev.scanFromId) : Math.max(0, maxId - 100_000);
    const scanTo = Math.min(maxId, scanFrom + SAMPLE_SCAN_MAX_IDS);

    // One read of the window's processed rows: the global figures, and per source and UTC day the counts that
    // source_trust_days adds up (src/poll/trust.ts).
    const [applied] = await tx<
      { applied: number; p50: number | null; p99: number | null; lagCount: number; perSource: AppliedPerSource[] }[]
    >`
      with w as materialized (
        select source_id, via, processed_at, received_at, event_time
          from inbox_events
         where id >= ${scanFrom}::bigint and id <= ${scanTo}::bigint and status = 'processed'
           and processed_at >= ${start}::timestamptz and processed_at < ${end}::timestamptz),
      per as (
        select source_id as "sourceId", (coalesce(event_time, received_at) at time zone 'UTC')::date::text as day,
               count(*) filter (where via = 'webhook')::int as webhook, count(*) filter (where via = 'poll')::int as poll,
               count(*) filter (where via = 'replay')::int as replay
          from w group by 1, 2)
      select (select count(*) from w)::int as applied,
             (select percentile_cont(0.5) within group (order by (extract(epoch from processed_at - received_at) * 1000)::float8)
                from w where via = 'webhook') as p50,
             (select percentile_cont(0.99) within group (order by (extract(epoch from processed_at - received_at) * 1000)::float8)
                from w where via = 'webhook') as p99,
             (select count(*) from w where via = 'webhook')::int as "lagCount",
             (select coalesce(json_agg(per), '[]'::json) from per) as "perSource"`;
    const per = applied.perSource;

    // Per source: arrivals in the window, the newest webhook, and poll catches since the last sample (poll_cursors
    // keeps a running total per stream; the state row keeps the total seen last time).
    const perSource = await tx<{ sourceId: string }[]>`
      with arrivals as (
        select source_id,
               count(*) filter (where via = 'webhook')::int as webhook,
               count(*) filter (where via = 'poll')::int as poll,
               count(*) filter (where via = 'replay')::int as replay,
               max(received_at) filter (where via = 'webhook') as last_webhook
          from inbox_events
         where id > ${arrivalsFrom}::bigint and id <= ${maxId}::bigint
           and received_at >= ${start}::timestamptz and received_at < ${end}::timestamptz
         group by source_id),
      catches as (
        select source_id, sum(catches)::bigint as total from poll_cursors group by source_id),
      merged as (
        select s.id as source_id, coalesce(a.webhook, 0) as webhook, coalesce(a.poll, 0) as poll,
               coalesce(a.replay, 0) as replay, a.last_webhook, coalesce(c.total, 0) as total,
               greatest(0, coalesce(c.total, 0) - coalesce(st.catches_total, 0))::int as caught
          from sources s
          left join arrivals a on a.source_id = s.id
          left join catches c on c.source_id = s.id
          left join ops_source_state st on st.source_id = s.id),
      state as (
        insert into ops_source_state as st (source_id, last_webhook_at, catches_total)
        select source_id, last_webhook, total from merged
        on conflict (source_id) do update
          set last_webhook_at = greatest(st.last_webhook_at, excluded.last_webhook_at),
              catches_total = excluded.catches_total, updated_at = now()),
      applied_in as (
        select * from unnest(${per.map((a) => a.sourceId)}::text[], ${per.map((a) => a.day)}::date[],
                             ${per.map((a) => a.webhook)}::bigint[], ${per.map((a) => a.poll)}::bigint[],
                             ${per.map((a) => a.replay)}::bigint[]) as x(source_id, day, webhook, poll, replay)),
      trust as (
        insert into source_trust_days as d (source_id, day, webhook_applied, poll_applied, replay_applied)
        select a.source_id, a.day, a.webhook, a.poll, a.replay from applied_in a
         where exists (select 1 from sources s where s.id = a.source_id)
         order by a.source_id, a.day
        on conflict (source_id, day) do update
          set webhook_applied = d.webhook_applied + excluded.webhook_applied,
              poll_applied = d.poll_applied + excluded.poll_applied,
              replay_applied = d.replay_applied + excluded.replay_applied, updated_at = now()),
      written as (
        insert into ops_source_samples (at, source_id, webhook_events, poll_events, replay_events, catches)
        select ${end}::timestamptz, source_id, webhook, poll, replay, caught from merged
         where webhook + poll + replay + caught > 0
        on conflict (at, source_id) do nothing
        returning source_id)
      select source_id as "sourceId" from written`;

    await tx`
      insert into ops_samples (at, window_ms, inbox_pending, pending_capped, oldest_pending_age_s, dead, applied,
                               lag_p50_ms, lag_p99_ms, lag_count, max_inbox_id, scan_from_id)
      values (${end}::timestamptz, ${end.getTime() - start.getTime()}::int, ${now.pending}::int,
              ${now.pending >= SAMPLE_COUNT_CAP}::boolean, ${now.oldest}::float8, ${now.dead}::int, ${applied.applied}::int,
              ${applied.p50}::float8, ${applied.p99}::float8, ${applied.lagCount}::int, ${maxId}::bigint,
              ${now.minPendingId === null ? maxId + 1 : Number(now.minPendingId)}::bigint)
      on conflict (at) do nothing`;
    return { at: end, windowMs: end.getTime() - start.getTime(), pending: now.pending, applied: applied.applied, sources: perSource.length, pruned };
  });
}

/** Deletes samples older than `before` (at most a day's worth per table per call: the sampler runs every minute). */
export async function pruneOpsSamples(sql: Sql, before: Date): Promise<number> {
  const [r] = await sql<{ n: number }[]>`
    with a as (delete from ops_samples where at in (
                 select at from ops_samples where at < ${before}::timestamptz order by at limit 1440) returning 1),
         b as (delete from ops_source_samples where (at, source_id) in (
                 select at, source_id from ops_source_samples where at < ${before}::timestamptz order by at limit 100000) returning 1),
         c as (delete from source_trust_days where (source_id, day) in (
                 select source_id, day from source_trust_days
                  where day < (${before}::timestamptz at time zone 'UTC')::date order by day limit 100000) returning 1)
    select ((select count(*) from a) + (select count(*) from b) + (select count(*) from c))::int as n`;
  return r.n;
}
