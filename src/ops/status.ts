import type { Queryable, Sql } from '../db/client.js';
import { PollStreams } from '../poll/streams.js';
import { type ReconcileStatus, reconcileStatus } from '../poll/reconcile.js';
import { QuarantineReason } from '../intake/quarantine.js';
import { readTrustDays, type SourceTrustDay, sumTrust, TRUST_DAYS, type TrustFigures } from '../poll/trust.js';

/**
 * What `ops status` prints and `/metrics` exports from the database: every query here is bounded (the pending count
 * stops at COUNT_CAP rows, dead and ignored rows are the exact sums of their counters (inbox_finished_counts, kept by
 * triggers: migration 0009), the oldest pending row is read through the pending index, quarantine figures are sums of
 * hourly counters) and the whole read runs under a statement timeout, so a read during a huge backlog or a flood stays cheap.
 */

/** Counts stop at this many rows (the figure is then "at least"). */
export const COUNT_CAP = 1_000_000;

export interface InboxFigures {
  pending: number;
  /** True when `pending` hit COUNT_CAP. */
  pendingCapped: boolean;
  oldestPendingAgeSeconds: number | null;
  dead: number;
  ignored: number;
}

export interface CursorStatus {
  sourceId: string;
  sourceName: string;
  enabled: boolean;
  stream: string;
  cursorTime: Date | null;
  /** Seconds since the last successful poll; null if never. */
  ageSeconds: number | null;
  /** Seconds since the source was created (the age a never-polled stream exports). */
  sourceAgeSeconds: number;
  /** The source is polled (enabled, with an API token): its streams' ages are alerting figures. */
  polled: boolean;
  lastSuccessAt: Date | null;
  lastError: string | null;
  catches: number;
  backfillSince: Date | null;
  /** A poll is paging through a window right now (or died mid-way and will resume). */
  inProgress: boolean;
  windowEnd: Date | null;
}

export interface BudgetStatus {
  key: string;
  tokens: number;
  blockedUntil: Date | null;
  calls: number;
  throttled: number;
}

export interface WorkerStatus {
  workerId: string;
  host: string;
  pid: number;
  startedAt: Date;
  lastSeenAt: Date;
  ageSeconds: number;
  alive: boolean;
}

export interface Status {
  at: Date;
  inbox: InboxFigures;
  cursors: CursorStatus[];
  rateBudgets: BudgetStatus[];
  workers: WorkerStatus[];
  /** Refusals of known sources in the last 24 hours (hourly buckets), by reason; each sum reads at most COUNT_CAP counters. */
  quarantine24h: { reason: string; count: number }[];
  /** Verified deliveries of a stored webhook-id with a different body, last 24 hours: acknowledged, never applied. */
  changedBodies24h: number;
  /** graphile-worker jobs by task: waiting (incl. retries), locked (running), permanently failed (COUNT_CAP jobs read at most). */
  jobs: { task: string; waiting: number; locked: number; failed: number }[];
  /** Open connections of wharf processes by application name (pool usage across processes). */
  connections: { application: string; state: string; count: number }[];
  sources: { enabled: number; disabled: number };
  /** Payload fields the normaliser did not know or could not read, per topic and field (most recent first, ≤ 200). */
  drift: DriftStatus[];
  /** Resources waiting to be fetched by id, per source. */
  resolves: { sourceId: string; waiting: number; failing: number; oldestAgeSeconds: number | null }[];
  /** Each source with an API token: its webhook subscription as the last check found it (never checked: null). */
  subscriptions: SubscriptionStatus[];
  /** Reconciliation against the provider's counts, per source and stream: newest reconciled window, windows still short. */
  reconcile: ReconcileStatus[];
  /** Webhook trust per source (src/poll/trust.ts) and the poll interval chosen from it (src/poll/intervals.ts). */
  trust: TrustStatus[];
}

export interface TrustStatus {
  sourceId: string;
  sourceName: string;
  /** Enabled with an API token: poll_schedule chooses its interval. */
  polled: boolean;
  /** The last TRUST_DAYS UTC days with counts, newest first (a day without events is absent). */
  days: Omit<SourceTrustDay, 'sourceId'>[];
  /** Those days summed: what the interval is chosen from. */
  recent: TrustFigures;
  /** The interval last chosen (null: not chosen yet, the base applies). */
  interval: { ms: number; reason: string; share: number | null; events: number; budgetFloorMs: number; decidedAt: Date } | null;
}

export interface DriftStatus {
  topic: string;
  field: string;
  problem: string;
  count: number;
  firstSeenAt: Date;
  lastSeenAt: Date;
}

export interface SubscriptionStatus {
  sourceId: string;
  sourceName: string;
  /** `ok`, `missing`, `disabled`, `topics_missing`, `error`; null: never checked. */
  state: string | null;
  missingTopics: string[];
  checkedAt: Date | null;
  lastError: string | null;
}

/** Reads the whole status in one read-only transaction with a statement timeout of `timeoutMs`. */
export async function readStatus(sql: Sql, p: { staleAfterMs: number; timeoutMs?: number }): Promise<Status> {
  return sql.begin('read only', async (tx) => {
    await tx`select set_config('statement_timeout', ${String(p.timeoutMs ?? 2000)}, true)`;
    const [inbox] = await tx<(InboxFigures & { at: Date })[]>`
      select now() as at,
        (select count(*) from (select 1 from inbox_events where status = 'pending' limit ${COUNT_CAP}::int) x)::int as pending,
        (select extract(epoch from now() - received_at)::float8 from inbox_events
          where status = 'pending' order by id limit 1) as "oldestPendingAgeSeconds",
        (select coalesce(sum(count), 0) from inbox_finished_counts where status = 'dead')::float8 as dead,
        (select coalesce(sum(count), 0) from inbox_finished_counts where status = 'ignored')::float8 as ignored`;
    // Every stream that has a cursor, and every stream of a polled source (enabled, with a token) even if it has
    // none yet: a stream that never polled successfully must still show (and export an age that can alert).
    const cursors = await tx<CursorStatus[]>`
      select s.id as "sourceId", s.name as "sourceName", s.enabled, st.stream, c.cursor_time as "cursorTime",
             extract(epoch from now() - c.last_success_at)::float8 as "ageSeconds", c.last_success_at as "lastSuccessAt",
             extract(epoch from now() - s.created_at)::float8 as "sourceAgeSeconds",
             (s.enabled and s.api_token is not null) as polled,
             c.last_error as "lastError", coalesce(c.catches, 0)::float8 as catches, c.backfill_since as "backfillSince",
             coalesce(c.cursor_token is not null, false) as "inProgress", c.window_end as "windowEnd"
        from sources s
       cross join unnest(${PollStreams as unknown as string[]}::text[]) as st(stream)
        left join poll_cursors c on c.source_id = s.id and c.stream = st.stream
       where c.source_id is not null or (s.enabled and s.api_token is not null)
       order by s.name, st.stream`;
    const rateBudgets = await tx<BudgetStatus[]>`
      select key, tokens::float8 as tokens, blocked_until as "blockedUntil", calls::float8 as calls, throttled::float8 as throttled from rate_budgets order by key`;
    const workers = await tx<WorkerStatus[]>`
      select worker_id as "workerId", host, pid, started_at as "startedAt", last_seen_at as "lastSeenAt",
             extract(epoch from now() - last_seen_at)::float8 as "ageSeconds",
             last_seen_at > now() - ${p.staleAfterMs}::int * interval '1 millisecond' as alive
        from worker_heartbeats order by started_at, worker_id`;
    const quarantine24h = await tx<{ reason: string; count: number }[]>`
      select reason, sum(count)::float8 as count
        from (select reason, count from quarantine_counts
               where bucket > now() - interval '24 hours' limit ${COUNT_CAP}::int) q
       group by reason order by count desc, reason`;
    const jobs = await tx<{ task: string; waiting: number; locked: number; failed: number }[]>`
      select t.identifier as task,
             count(*) filter (where j.locked_at is null and j.attempts < j.max_attempts)::int as waiting,
             count(*) filter (where j.locked_at is not null)::int as locked,
             count(*) filter (where j.attempts >= j.max_attempts)::int as failed
        from (select task_id, locked_at, attempts, max_attempts from graphile_worker._private_jobs limit ${COUNT_CAP}::int) j
        join graphile_worker._private_tasks t on t.id = j.task_id
       group by t.identifier order by t.identifier`;
    const connections = await tx<{ application: string; state: string; count: number }[]>`
      select application_name as application, coalesce(state, 'unknown') as state, count(*)::int as count
        from pg_stat_activity
       where datname = current_database() and application_name like 'wharf%'
       group by 1, 2 order by 1, 2`;
    const [sources] = await tx<{ enabled: number; disabled: number }[]>`
      select count(*) filter (where enabled)::int as enabled, count(*) filter (where not enabled)::int as disabled from sources`;
    const drift = await tx<DriftStatus[]>`
      select topic, field, problem, count::float8 as count, first_seen_at as "firstSeenAt", last_seen_at as "lastSeenAt"
        from payload_drift order by last_seen_at desc, topic, field limit 200`;
    const resolves = await tx<Status['resolves']>`
      select source_id as "sourceId", count(*)::int as waiting, count(*) filter (where attempts > 0)::int as failing,
             extract(epoch from now() - min(requested_at))::float8 as "oldestAgeSeconds"
        from resolve_requests group by source_id order by source_id`;
    const subscriptions = await tx<SubscriptionStatus[]>`
      select s.id as "sourceId", s.name as "sourceName", w.state, coalesce(w.missing_topics, '{}') as "missingTopics",
             w.checked_at as "checkedAt", w.last_error as "lastError"
        from sources s left join webhook_subscriptions w on w.source_id = s.id
       where s.api_token is not null and s.enabled
       order by s.name`;
    const reconcile = await reconcileStatus(tx);
    const trust = await readTrustStatus(tx);
    const { at, ...figures } = inbox;
    return {
      trust,
      reconcile,
      at: at,
      inbox: { ...figures, pendingCapped: figures.pending >= COUNT_CAP },
      cursors: cursors.map((c) => ({
        ...c,
        cursorTime: c.cursorTime,
        lastSuccessAt: c.lastSuccessAt,
        backfillSince: c.backfillSince,
        windowEnd: c.windowEnd,
      })),
      rateBudgets: rateBudgets.map((b) => ({ ...b, blockedUntil: b.blockedUntil })),
      workers: workers.map((w) => ({ ...w, startedAt: w.startedAt, lastSeenAt: w.lastSeenAt })),
      quarantine24h,
      changedBodies24h: quarantine24h.find((q) => q.reason === QuarantineReason.changedBody)?.count ?? 0,
      jobs,
      connections,
      sources,
      drift,
      resolves,
      subscriptions,
    };
  });
}

/** Every source that is polled or has trust counts: its recent days and its chosen interval. Three bounded reads. */
async function readTrustStatus(tx: Queryable): Promise<TrustStatus[]> {
  const days = await readTrustDays(tx, { days: TRUST_DAYS });
  const rows = await tx<(Omit<TrustStatus, 'days' | 'recent' | 'interval'> & { interval: TrustStatus['interval'] })[]>`
    select s.id as "sourceId", s.name as "sourceName", (s.enabled and s.api_token is not null) as polled,
           case when pi.source_id is null then null
                else json_build_object('ms', pi.interval_ms, 'reason', pi.reason, 'share', pi.share, 'events', pi.events,
                                       'budgetFloorMs', pi.budget_floor_ms, 'decidedAt', pi.decided_at) end as interval
      from sources s
      left join poll_intervals pi on pi.source_id = s.id
     where (s.enabled and s.api_token is not null) or pi.source_id is not null
        or s.id = any(${[...new Set(days.map((d) => d.sourceId))]}::text[])
     order by s.name`;
  return rows.map((r) => {
    const mine = days.filter((d) => d.sourceId === r.sourceId).map(({ sourceId: _, ...d }) => d);
    const interval = r.interval && { ...r.interval, events: Number(r.interval.events), decidedAt: new Date(r.interval.decidedAt) };
    return { ...r, days: mine, recent: sumTrust(mine), interval };
  });
}
