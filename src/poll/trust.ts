import type { Queryable } from '../db/client.js';

/**
 * Webhook trust per source: the share of changes that only polling found, per UTC day (`source_trust_days`).
 *
 *   share = poll catches / (webhook events applied + poll catches)
 *
 * A poll catch is a polled event that brought something newer than the database held and that no webhook of its chunk
 * carried (the drain's count, src/drain/apply-chunk.ts). The denominator counts each change once: a polled event that
 * re-read what a webhook had delivered is not a change of its own (with every change also read by a poll, counting all
 * applied events would show a 50% loss as 33%). The ops page's catch share is the same ratio.
 *
 * Both are counted per UTC day of the change (the version time an event carries; its arrival when it has none), in
 * statements that already run, never a statement per event:
 * - catches by the drain, in the statement that already adds them to `poll_cursors.catches` (src/poll/catches.ts,
 *   run only by chunks that caught something). A change older than the source is not counted: a first poll's
 *   backfill of history that no webhook was ever due for is not a webhook miss;
 * - events applied by the ops sampler (src/worker/ops-samples.ts, once a minute), from the rows processed in its window
 *   that it already reads for the ops page (an id range of the inbox, bounded), in its per-source statement.
 * So the share of a day is final once that day's late webhooks and polls are in (the provider retries for ~24 h);
 * the current day's share moves as the day goes on.
 */

/** Days the adaptive interval looks at: the current UTC day and the one before (between 24 and 48 hours of events). */
export const TRUST_DAYS = 2;

export interface TrustCounts {
  webhookApplied: number;
  pollApplied: number;
  replayApplied: number;
  catches: number;
}

export interface TrustFigures extends TrustCounts {
  /** The share's denominator: webhook events applied + poll catches. */
  events: number;
  /** catches / events; null when there were no events. */
  share: number | null;
}

export function trustFigures(c: TrustCounts): TrustFigures {
  const events = c.webhookApplied + c.catches;
  return { ...c, events, share: events > 0 ? c.catches / events : null };
}

export interface SourceTrustDay extends TrustFigures {
  sourceId: string;
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
}

/**
 * Every source's counts for the last `days` UTC days up to the database's current day (newest first), one statement
 * through the day index: at most sources × (days + retention race) rows.
 */
export async function readTrustDays(sql: Queryable, p: { days: number }): Promise<SourceTrustDay[]> {
  const rows = await sql<(TrustCounts & { sourceId: string; day: string })[]>`
    select source_id as "sourceId", day::text as day, webhook_applied::float8 as "webhookApplied",
           poll_applied::float8 as "pollApplied", replay_applied::float8 as "replayApplied", catches::float8 as catches
      from source_trust_days
     where day > (now() at time zone 'UTC')::date - ${p.days}::int
     order by source_id, day desc`;
  return rows.map((r) => ({ sourceId: r.sourceId, day: r.day, ...trustFigures(r) }));
}

/** Sums a source's days (the recent figures the interval is chosen from). */
export function sumTrust(days: readonly TrustCounts[]): TrustFigures {
  const total: TrustCounts = { webhookApplied: 0, pollApplied: 0, replayApplied: 0, catches: 0 };
  for (const d of days) {
    total.webhookApplied += d.webhookApplied;
    total.pollApplied += d.pollApplied;
    total.replayApplied += d.replayApplied;
    total.catches += d.catches;
  }
  return trustFigures(total);
}
