import type { Sql } from '../../db/client.js';
import { type ReconcileStatus, reconcileStatus } from '../../poll/reconcile.js';

/**
 * What the ops page reads. Everything runs in one read-only transaction under a statement timeout, and every query is
 * bounded: time series come from the sampler's small tables (ops_samples, ops_source_samples; src/worker/ops-samples.ts),
 * inbox counts stop at PAGE_COUNT_CAP, dead letters are read through the partial (status, received_at) index, lists have
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
  /** The groups were built from the newest DEAD_SCAN_CAP dead letters only. */
  deadGroupsCapped: boolean;
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
/** Dead-letter groups are built from at most this many of the newest dead letters (the figure is then "at least"). */
export const DEAD_SCAN_CAP = 200_000;

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
             (select count(*) from (select 1 from inbox_events where status in ('dead', 'ignored') and status = 'dead'
                limit ${PAGE_COUNT_CAP}::int) x)::int as dead`;
    inbox.pendingCapped = inbox.pending >= PAGE_COUNT_CAP;
    inbox.deadCapped = inbox.dead >= PAGE_COUNT_CAP;

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

    // One pass over the newest DEAD_SCAN_CAP dead letters (through the partial (status, received_at) index): groups
    // and each group's newest rows come from the same rows, so a small group among many costs no extra scan.
    const groups = await tx<(Omit<DeadGroup, 'recent'> & { recent: DeadGroup['recent'] | null; scanned: number })[]>`
      with d as (
        select id, topic, source_id, received_at, last_error from inbox_events
         where status in ('dead', 'ignored') and status = 'dead' order by received_at desc limit ${DEAD_SCAN_CAP}::int),
      g as (
        select last_error as reason, count(*)::int as count,
               array_agg(distinct coalesce(topic, '(none)')) as topics, array_agg(distinct source_id) as sources,
               min(received_at) as "firstAt", max(received_at) as "lastAt"
          from d group by last_error order by count(*) desc, last_error limit ${DEAD_GROUPS + 1}::int),
      r as (
        select * from (select d.*, row_number() over (partition by last_error order by received_at desc, id desc) as n from d) x
         where n <= ${RECENT_PER_GROUP}::int)
      select g.*, (select count(*)::int from d) as scanned, (
        select json_agg(json_build_object('id', r.id, 'topic', r.topic, 'sourceId', r.source_id, 'receivedAt', r.received_at)
                        order by r.received_at desc, r.id desc)
          from r where r.last_error is not distinct from g.reason) as recent
        from g order by g.count desc, g.reason`;
    const deadGroups: DeadGroup[] = groups.slice(0, DEAD_GROUPS).map(({ scanned: _, ...g }) => ({
      ...g,
      recent: (g.recent ?? []).map((r) => ({ ...r, id: Number(r.id), receivedAt: new Date(r.receivedAt) })),
    }));

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
      deadGroupsCapped: (groups[0]?.scanned ?? 0) >= DEAD_SCAN_CAP,
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
    dead as (
      select source_id, count(*)::int as n from (
        select source_id from inbox_events where status in ('dead', 'ignored') and status = 'dead' limit ${PAGE_COUNT_CAP}::int) x
       group by source_id),
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
