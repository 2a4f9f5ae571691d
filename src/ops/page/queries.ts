import type { Sql } from '../../db/client.js';
import { type ReconcileStatus, reconcileStatus } from '../../poll/reconcile.js';

/**
 * What the ops page reads. Everything runs in one read-only transaction under a statement timeout, and every query is
 * bounded: time series come from the sampler's small tables (ops_samples, ops_source_samples; src/worker/ops-samples.ts),
 * the pending count stops at PAGE_COUNT_CAP, dead letters are counted by their counters (inbox_finished_counts, kept
 * exact by triggers) and only each listed group's newest few are read (inbox_events_dead_reason_idx), lists have
 * a LIMIT, and the only look at fresh inbox rows is the id range above the last sample (at most FRESH_SCAN_IDS ids).
 *
 * Tables other branches add are optional: `poll_runs` (recent poll runs), `quarantine_counts` (rejected requests
 * counted per hour), `webhook_subscriptions` (subscription state). Each is looked up with to_regclass first; a missing
 * one renders as "not tracked".
 */

export const PAGE_COUNT_CAP = 1_000_000;
/** Inbox ids above the last sample read live for "last webhook" (the sample holds the rest). */
const FRESH_SCAN_IDS = 100_000;
/** The charts' span. */
export const CHART_SPAN_MS = 24 * 60 * 60 * 1000;

export interface SeriesPoint {
  at: number;
  pending: number;
  oldestPendingAgeS: number | null;
  appliedPerMin: number;
  lagP50Ms: number | null;
  lagP99Ms: number | null;
}

export interface SourceLine {
  id: string;
  name: string;
  enabled: boolean;
  /** null: subscription state is not tracked by this schema. */
  subscription: string | null;
  lastWebhookAt: Date | null;
  lastPollAt: Date | null;
  webhookEvents24h: number;
  pollEvents24h: number;
  catches24h: number;
  /** catches / (webhook events + catches) over 24 h, in [0, 1]; null when nothing arrived. */
  catchShare24h: number | null;
  deadLetters: number;
  rejected24h: number;
}

export interface DeadGroup {
  reason: string | null;
  count: number;
  topics: string[];
  sources: string[];
  firstAt: Date;
  lastAt: Date;
  /** The newest few, for opening one. */
  recent: { id: number; topic: string | null; sourceId: string; receivedAt: Date }[];
}

export interface PageData {
  at: Date;
  inbox: { pending: number; pendingCapped: boolean; oldestPendingAgeS: number | null; dead: number; deadCapped: boolean };
  latest: SeriesPoint | null;
  series: SeriesPoint[];
  sources: SourceLine[];
  deadGroups: DeadGroup[];
  /** More reasons exist than listed. */
  deadGroupsTruncated: boolean;
  cursors: {
    sourceId: string;
    sourceName: string;
    stream: string;
    cursorTime: Date | null;
    lastRunAt: Date | null;
    lastSuccessAt: Date | null;
    lastError: string | null;
    catches: number;
    inProgress: boolean;
  }[];
  /** null: no poll_runs table in this schema. */
  pollRuns: Record<string, unknown>[] | null;
  workers: { workerId: string; host: string; pid: number; startedAt: Date; lastSeenAt: Date; alive: boolean }[];
  lockReleases: { workerId: string; jobs: number; queues: number; releasedAt: Date; releasedBy: string }[];
  jobs: { task: string; waiting: number; locked: number; failed: number }[];
  /** Reconciliation against the provider's counts, per source and stream (as `ops status` shows it). */
  reconcile: ReconcileStatus[];
  /** What optional tables exist. */
  has: { pollRuns: boolean; quarantineCounts: boolean; subscriptions: boolean };
}

const DEAD_GROUPS = 50;
const RECENT_PER_GROUP = 10;

/** Reads everything the page shows. Read-only; bounded (see the module comment). */
export async function readOpsPage(sql: Sql, p: { now: Date; staleAfterMs: number; timeoutMs?: number }): Promise<PageData> {
  return sql.begin('read only', async (tx) => {
    await tx`select set_config('statement_timeout', ${String(p.timeoutMs ?? 5000)}, true)`;
    const since = new Date(p.now.getTime() - CHART_SPAN_MS);
    const [has] = await tx<{ pollRuns: boolean; quarantineCounts: boolean; subscriptions: boolean }[]>`
      select to_regclass('public.poll_runs') is not null as "pollRuns",
             to_regclass('public.quarantine_counts') is not null as "quarantineCounts",
             to_regclass('public.webhook_subscriptions') is not null as "subscriptions"`;
    const subscriptions = has.subscriptions;

    const [inbox] = await tx<PageData['inbox'][]>`
      select (select count(*) from (select 1 from inbox_events where status = 'pending' limit ${PAGE_COUNT_CAP}::int) x)::int as pending,
             (select extract(epoch from ${p.now}::timestamptz - received_at)::float8 from inbox_events
               where status = 'pending' order by id limit 1) as "oldestPendingAgeS",
             (select coalesce(sum(count), 0) from inbox_finished_counts where status = 'dead')::float8 as dead`;
    inbox.pendingCapped = inbox.pending >= PAGE_COUNT_CAP;
    inbox.deadCapped = false; // an exact sum of counters, never capped

    const series = await tx<SeriesPoint[]>`
      select (extract(epoch from at) * 1000)::float8 as at, inbox_pending as pending, oldest_pending_age_s as "oldestPendingAgeS",
             (applied * 60000.0 / greatest(window_ms, 1))::float8 as "appliedPerMin",
             lag_p50_ms as "lagP50Ms", lag_p99_ms as "lagP99Ms"
        from ops_samples where at > ${since}::timestamptz order by at`;
    const [last] = await tx<{ maxInboxId: string | null }[]>`
      select (select max_inbox_id from ops_samples order by at desc limit 1)::text as "maxInboxId"`;

    const sources = await readSources(tx as unknown as Sql, {
      since,
      freshFrom: last.maxInboxId === null ? null : Number(last.maxInboxId),
      quarantineCounts: has.quarantineCounts,
      subscriptions,
    });

    // Groups from the dead-letter counters (exact, one row per source, topic and reason and slot: read whole), the
    // largest DEAD_GROUPS + 1; then each group's newest rows and its first one, probes of inbox_events_dead_reason_idx.
    const groups = await tx<(Omit<DeadGroup, 'recent' | 'lastAt'> & { recent: DeadGroup['recent'] | null })[]>`
      with k as (
        select reason_key, min(reason) as reason, topic, source_id, sum(count) as n
          from inbox_finished_counts where status = 'dead'
         group by reason_key, topic, source_id having sum(count) > 0),
      g as (
        select reason_key, min(reason) as reason, sum(n)::float8 as count,
               array_agg(distinct coalesce(topic, '(none)')) as topics, array_agg(distinct source_id) as sources
          from k group by reason_key order by sum(n) desc, min(reason) limit ${DEAD_GROUPS + 1}::int)
      select g.reason, g.count, g.topics, g.sources,
             (select e.received_at from inbox_events e
               where e.status = 'dead' and coalesce(md5(e.last_error), '') = g.reason_key
               order by coalesce(md5(e.last_error), ''), e.received_at, e.id limit 1) as "firstAt",
             r.recent
        from g
        cross join lateral (
          select json_agg(json_build_object('id', x.id, 'topic', x.topic, 'sourceId', x.source_id, 'receivedAt', x.received_at)
                          order by x.received_at desc, x.id desc) as recent
            from (select e.id, e.topic, e.source_id, e.received_at from inbox_events e
                   where e.status = 'dead' and coalesce(md5(e.last_error), '') = g.reason_key
                   order by coalesce(md5(e.last_error), '') desc, e.received_at desc, e.id desc limit ${RECENT_PER_GROUP}::int) x) r
       order by g.count desc, g.reason`;
    const deadGroups: DeadGroup[] = groups.slice(0, DEAD_GROUPS).map((g) => {
      const recent = (g.recent ?? []).map((r) => ({ ...r, id: Number(r.id), receivedAt: new Date(r.receivedAt) }));
      return { ...g, lastAt: recent[0]?.receivedAt ?? g.firstAt, recent };
    });

    const cursors = await tx<PageData['cursors']>`
      select c.source_id as "sourceId", s.name as "sourceName", c.stream, c.cursor_time as "cursorTime",
             c.last_run_at as "lastRunAt", c.last_success_at as "lastSuccessAt", c.last_error as "lastError",
             c.catches::float8 as catches, c.cursor_token is not null as "inProgress"
        from poll_cursors c join sources s on s.id = c.source_id
       order by s.name, c.stream limit 500`;
    const pollRuns = has.pollRuns
      ? (await tx<{ r: Record<string, unknown> }[]>`
          select row_to_json(pr) as r from (select * from poll_runs order by id desc limit 30) pr`).map((x) => x.r)
      : null;
    const workers = await tx<PageData['workers']>`
      select worker_id as "workerId", host, pid, started_at as "startedAt", last_seen_at as "lastSeenAt",
             last_seen_at > ${p.now}::timestamptz - ${p.staleAfterMs}::int * interval '1 millisecond' as alive
        from worker_heartbeats order by started_at, worker_id limit 200`;
    const lockReleases = await tx<PageData['lockReleases']>`
      select worker_id as "workerId", cardinality(job_ids) as jobs, cardinality(queue_names) as queues,
             released_at as "releasedAt", released_by as "releasedBy"
        from lock_releases order by id desc limit 20`;
    const jobs = await tx<PageData['jobs']>`
      select t.identifier as task,
             count(*) filter (where j.locked_at is null and j.attempts < j.max_attempts)::int as waiting,
             count(*) filter (where j.locked_at is not null)::int as locked,
             count(*) filter (where j.attempts >= j.max_attempts)::int as failed
        from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
       group by t.identifier order by t.identifier`;
    const reconcile = await reconcileStatus(tx);
    return {
      at: p.now,
      inbox,
      latest: series.length > 0 ? series[series.length - 1] : null,
      series,
      sources,
      deadGroups,
      deadGroupsTruncated: groups.length > DEAD_GROUPS,
      cursors,
      pollRuns,
      workers,
      lockReleases,
      jobs,
      reconcile,
      has: { pollRuns: has.pollRuns, quarantineCounts: has.quarantineCounts, subscriptions },
    };
  });
}

async function readSources(
  sql: Sql,
  p: { since: Date; freshFrom: number | null; quarantineCounts: boolean; subscriptions: boolean },
): Promise<SourceLine[]> {
  // The bound as a literal, so the planner reads it as an index range on the primary key.
  const [{ maxId }] = await sql<{ maxId: string }[]>`select coalesce(max(id), 0)::text as "maxId" from inbox_events`;
  const freshFrom = Math.max(p.freshFrom ?? 0, Number(maxId) - FRESH_SCAN_IDS);
  const rows = await sql<(Omit<SourceLine, 'catchShare24h'> & { subscription: string | null })[]>`
    with fresh as (
      -- Webhooks since the last sample (or, before any sample, among the newest ids): the sample holds older ones.
      select source_id, max(received_at) as last_webhook
        from inbox_events
       where id > ${freshFrom}::bigint and via = 'webhook'
       group by source_id),
    day as (
      select source_id, sum(webhook_events)::int as webhook, sum(poll_events)::int as poll, sum(catches)::int as catches
        from ops_source_samples where at > ${p.since}::timestamptz group by source_id),
    dead as (select source_id, sum(count)::int as n from inbox_finished_counts where status = 'dead' group by source_id),
    polls as (select source_id, max(last_run_at) as last_poll from poll_cursors group by source_id)
    select s.id, s.name, s.enabled, null::text as subscription,
           greatest(st.last_webhook_at, f.last_webhook) as "lastWebhookAt", pl.last_poll as "lastPollAt",
           coalesce(d.webhook, 0) as "webhookEvents24h", coalesce(d.poll, 0) as "pollEvents24h",
           coalesce(d.catches, 0) as "catches24h", coalesce(dl.n, 0) as "deadLetters", 0 as "rejected24h"
      from sources s
      left join ops_source_state st on st.source_id = s.id
      left join fresh f on f.source_id = s.id
      left join day d on d.source_id = s.id
      left join dead dl on dl.source_id = s.id
      left join polls pl on pl.source_id = s.id
     order by s.name limit 500`;
  const rejected = p.quarantineCounts
    ? await sql<{ sourceId: string; n: number }[]>`
        select source_id as "sourceId", sum(count)::int as n from quarantine_counts
         where bucket >= date_trunc('hour', ${p.since}::timestamptz) group by source_id`
    : await sql<{ sourceId: string; n: number }[]>`
        select source_id as "sourceId", count(*)::int as n from quarantine
         where received_at > ${p.since}::timestamptz and source_id is not null group by source_id`;
  const rejectedBy = new Map(rejected.map((r) => [r.sourceId, r.n]));
  const subs = await readSubscriptions(sql, p.subscriptions);
  return rows.map((r) => {
    const denominator = r.webhookEvents24h + r.catches24h;
    return {
      ...r,
      subscription: subs?.get(r.id) ?? (subs ? 'not checked yet' : null),
      rejected24h: rejectedBy.get(r.id) ?? 0,
      catchShare24h: denominator > 0 ? r.catches24h / denominator : null,
    };
  });
}

/**
 * Subscription state by source, as the subscription check (task check_subscriptions) last found it: `ok`, `missing`,
 * `disabled`, `topics_missing` (with the topics) or `error` (with its message); undefined: not tracked by this schema.
 */
async function readSubscriptions(sql: Sql, tracked: boolean): Promise<Map<string, string> | undefined> {
  if (!tracked) return undefined;
  // As JSON: only the columns read below are relied on.
  const rows = await sql<{ r: { source_id: string; state: string; missing_topics?: string[]; last_error?: string | null } }[]>`
    select row_to_json(w) as r from webhook_subscriptions w order by source_id limit 500`;
  return new Map(
    rows.map(({ r }) => {
      const topics = r.missing_topics?.length ? ` (${r.missing_topics.join(', ')})` : '';
      const error = r.state === 'error' && r.last_error ? `: ${r.last_error.slice(0, 120)}` : '';
      return [r.source_id, `${r.state}${topics}${error}`];
    }),
  );
}

export interface DeadLetter {
  id: number;
  sourceId: string;
  eventId: string;
  topic: string | null;
  status: string;
  via: string;
  attempts: number;
  receivedAt: Date;
  processedAt: Date | null;
  headers: Record<string, string> | null;
  body: string;
  lastError: string | null;
}

/** One inbox row, dead or ignored (others are not shown here). */
export async function readDeadLetter(sql: Sql, id: number): Promise<DeadLetter | undefined> {
  const [row] = await sql<DeadLetter[]>`
    select id::float8 as id, source_id as "sourceId", event_id as "eventId", topic, status, via, attempts,
           received_at as "receivedAt", processed_at as "processedAt", headers, body, last_error as "lastError"
      from inbox_events where id = ${id}::bigint and status in ('dead', 'ignored')`;
  return row;
}
