import { type Config, MINUTE, SECOND } from '../config.js';
import type { Queryable } from '../db/client.js';
import { PollStreams } from './streams.js';
import { readTrustDays, type SourceTrustDay, sumTrust, TRUST_DAYS, type TrustFigures } from './trust.js';

/**
 * The adaptive poll interval (docs/polling.md "Webhook trust and the adaptive interval"). poll_schedule, once a
 * minute, chooses each polled source's interval from its recent webhook trust (trust.ts: the current and previous UTC
 * day) and records it in `poll_intervals`; listDuePollStreams polls each source's streams at that interval.
 *
 * - fewer than POLL_TRUST_MIN_EVENTS events: POLL_INTERVAL_MS (nothing to judge by);
 * - share > POLL_TRUST_MISS_SHARE: base × missShare / share, at least POLL_INTERVAL_MIN_MS. The product share ×
 *   interval (changes waiting for the next poll, per unit of traffic) then stays where the threshold puts it at the
 *   base interval: twice the misses, half the interval;
 * - share ≤ POLL_TRUST_RELIABLE_SHARE: POLL_INTERVAL_MAX_MS;
 * - in between: POLL_INTERVAL_MS.
 *
 * Budget: a shortened interval is never below the source's budget floor, the interval at which its polling costs
 * POLL_BUDGET_SHARE × PROVIDER_CALLS_PER_MINUTE divided by the number of polled sources sharing its token (the budget
 * is per token: rate-budget.ts). A source's cost per cycle is the sum over its streams of the mean calls of their last
 * 10 runs (`poll_runs`; a stream without runs counts ASSUMED_CALLS_PER_RUN). So the sources of one token plan at most
 * that share of its budget per minute, except where the base interval alone already costs more: shortening never
 * goes below the base for that reason, and lengthening only spends less. The bucket itself still bounds every call.
 */

/** A stream with no run recorded yet is assumed to cost this many calls per run (returns lists in four calls). */
export const ASSUMED_CALLS_PER_RUN = 4;
/** Runs per stream whose mean cost is the stream's cost per cycle. */
const COST_RUNS = 10;

export const IntervalReasons = {
  tooFewEvents: 'too_few_events',
  missing: 'missing',
  reliable: 'reliable',
  normal: 'normal',
} as const;
export type IntervalReason = (typeof IntervalReasons)[keyof typeof IntervalReasons];

export interface IntervalPolicy {
  baseMs: number;
  minMs: number;
  maxMs: number;
  missShare: number;
  reliableShare: number;
  minEvents: number;
}

export const intervalPolicy = (c: Config): IntervalPolicy => ({
  baseMs: c.pollIntervalMs,
  minMs: c.pollIntervalMinMs,
  maxMs: c.pollIntervalMaxMs,
  missShare: c.pollTrustMissShare,
  reliableShare: c.pollTrustReliableShare,
  minEvents: c.pollTrustMinEvents,
});

export interface IntervalChoice {
  intervalMs: number;
  reason: IntervalReason;
}

/** The interval for recent figures `trust`, never shortened below `budgetFloorMs` (see above). Pure. */
export function chooseInterval(policy: IntervalPolicy, trust: Pick<TrustFigures, 'events' | 'share'>, budgetFloorMs: number): IntervalChoice {
  const { baseMs, minMs, maxMs } = policy;
  if (trust.events < policy.minEvents || trust.share === null) return { intervalMs: baseMs, reason: IntervalReasons.tooFewEvents };
  if (trust.share > policy.missShare) {
    const wanted = Math.min(baseMs, Math.max(minMs, Math.round((baseMs * policy.missShare) / trust.share)));
    return { intervalMs: Math.max(wanted, Math.min(baseMs, budgetFloorMs)), reason: IntervalReasons.missing };
  }
  if (trust.share <= policy.reliableShare) return { intervalMs: maxMs, reason: IntervalReasons.reliable };
  return { intervalMs: baseMs, reason: IntervalReasons.normal };
}

/**
 * How early a stream is due (listDuePollStreams): the schedule runs once a minute and a run starts a little after its
 * minute, so without it a one-minute interval would often wait two. At most a tenth of the shortest interval.
 */
export const scheduleSlackMs = (c: Pick<Config, 'pollIntervalMinMs'>): number => Math.min(5 * SECOND, Math.floor(c.pollIntervalMinMs / 10));

/** The shortest interval at which `callsPerCycle` stays within `callsPerMinute` (rounded up to the millisecond). */
export const budgetFloorMs = (callsPerCycle: number, callsPerMinute: number): number =>
  Math.ceil((callsPerCycle / callsPerMinute) * MINUTE);

export interface PlannedInterval extends IntervalChoice {
  sourceId: string;
  share: number | null;
  events: number;
  budgetFloorMs: number;
  callsPerCycle: number;
  /** Polled sources sharing this source's token (its budget). */
  budgetSharers: number;
}

/**
 * Chooses and records the interval of every polled source (enabled, with an API token); rows of sources no longer
 * polled are removed. Three statements (polled sources with their cost, trust days, the write). Idempotent.
 */
export async function planPollIntervals(sql: Queryable, config: Config): Promise<PlannedInterval[]> {
  const sources = await sql<{ sourceId: string; budgetKey: string; callsPerCycle: number }[]>`
    select s.id as "sourceId", coalesce(s.api_token_hash, s.id) as "budgetKey",
           sum(coalesce(c.calls, ${ASSUMED_CALLS_PER_RUN}::float8))::float8 as "callsPerCycle"
      from sources s
     cross join unnest(${PollStreams as unknown as string[]}::text[]) as st(stream)
      left join lateral (
        select avg(r.calls)::float8 as calls
          from (select calls from poll_runs r
                 where r.source_id = s.id and r.stream = st.stream
                 order by r.started_at desc limit ${COST_RUNS}::int) r) c on true
     where s.enabled and s.api_token is not null
     group by s.id
     order by s.id`;
  const days = new Map<string, SourceTrustDay[]>();
  for (const d of await readTrustDays(sql, { days: TRUST_DAYS })) days.set(d.sourceId, [...(days.get(d.sourceId) ?? []), d]);
  const sharers = new Map<string, number>();
  for (const s of sources) sharers.set(s.budgetKey, (sharers.get(s.budgetKey) ?? 0) + 1);
  const policy = intervalPolicy(config);
  const planned = sources.map((s): PlannedInterval => {
    const trust = sumTrust(days.get(s.sourceId) ?? []);
    const n = sharers.get(s.budgetKey) ?? 1;
    // Plus the slack: a stream may start that much early, and its spending must still fit.
    const floor = budgetFloorMs(s.callsPerCycle, (config.pollBudgetShare * config.providerCallsPerMinute) / n) + scheduleSlackMs(config);
    return {
      sourceId: s.sourceId,
      ...chooseInterval(policy, trust, floor),
      share: trust.share,
      events: trust.events,
      budgetFloorMs: floor,
      callsPerCycle: s.callsPerCycle,
      budgetSharers: n,
    };
  });
  await sql`
    with gone as (
      delete from poll_intervals where source_id <> all(${planned.map((p) => p.sourceId)}::text[]))
    insert into poll_intervals as pi (source_id, interval_ms, reason, share, events, budget_floor_ms, decided_at)
    select x.source_id, x.interval_ms, x.reason, x.share, x.events, x.floor, now()
      from unnest(${planned.map((p) => p.sourceId)}::text[], ${planned.map((p) => p.intervalMs)}::int[],
                  ${planned.map((p) => p.reason)}::text[], ${planned.map((p) => p.share)}::float8[],
                  ${planned.map((p) => p.events)}::bigint[], ${planned.map((p) => Math.min(p.budgetFloorMs, 2 ** 31 - 1))}::int[])
             as x(source_id, interval_ms, reason, share, events, floor)
     order by x.source_id
    on conflict (source_id) do update
       set interval_ms = excluded.interval_ms, reason = excluded.reason, share = excluded.share,
           events = excluded.events, budget_floor_ms = excluded.budget_floor_ms, decided_at = excluded.decided_at`;
  return planned;
}
