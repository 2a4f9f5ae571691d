import { DAY, HOUR, MINUTE } from '../config.js';
import type { Sql } from '../db/client.js';
import { InboxVia } from '../db/schema.js';
import type { NewInboxEvent } from '../inbox/insert-events.js';
import { commitPollPage } from './page.js';
import type { Queryable } from '../db/client.js';
import { parseInstant } from '../time.js';
import { markPollSuccess } from './cursors.js';
import { ProviderNotFoundError } from '../provider/errors.js';
import type { PollContext, PollResult } from './context.js';
import { type TimelineEntry, TimelineLogTypes } from '../provider/shapes.js';
import { PollTopics } from './streams.js';

/**
 * The timelines stream: tracking history of shipments not yet delivered, on a tiered schedule kept in
 * `shipments.timeline_next_check_at` (found through the partial index `shipments_timeline_due_idx`). Recently
 * shipped shipments are checked often, old ones rarely, and none after 30 days or once delivered. Shipments not yet
 * shipped cost no call: the orders stream sees them being labelled, and they are looked at again an hour later.
 * Each batch's events and new due times commit together; a run spends at most `timelineCallsPerRun` calls.
 */

/** Far enough to never come due: checks ended (delivered per the timeline, too old, or gone at the provider). */
export const TIMELINE_STOP = new Date('9999-12-31T00:00:00.000Z');
const BATCH = 50;
const UNSHIPPED_RECHECK_MS = HOUR;

/** When to look at a shipment's timeline next, from when it shipped. */
export function nextTimelineCheck(shippedAt: Date, now: Date): Date {
  const age = now.getTime() - shippedAt.getTime();
  const every = age < 2 * DAY ? 15 * MINUTE : age < 7 * DAY ? HOUR : age < 30 * DAY ? 6 * HOUR : null;
  return every === null ? TIMELINE_STOP : new Date(now.getTime() + every);
}

export interface DueTimeline {
  id: number;
  orderId: number | null;
  /** When it shipped (fulfilment date, else creation for a labelled one); null: not shipped yet. */
  shippedAt: Date | null;
}

/**
 * A source's undelivered shipments whose timeline check is due (never checked first), oldest due first, at most
 * `limit`. Its predicate repeats the partial index's so the planner can use it. May return fewer than asked.
 */
export async function listDueTimelines(
  sql: Sql,
  p: { sourceId: string; now: Date; limit: number },
): Promise<DueTimeline[]> {
  const rows = await sql<{ id: string; orderId: string | null; shippedAt: Date | null }[]>`
    select id, order_id as "orderId",
           coalesce(actual_fulfillment_date, case when tracking_number is not null then created_date end) as "shippedAt"
      from shipments
     where delivered_at is null and status not in ('Cancelled', 'CleanSweeped')
       and (timeline_next_check_at is null or timeline_next_check_at <= ${p.now}::timestamptz)
       and source_id = ${p.sourceId}
     order by timeline_next_check_at nulls first, id
     limit ${p.limit}`;
  return rows.map((r) => ({
    id: Number(r.id),
    orderId: r.orderId === null ? null : Number(r.orderId),
    shippedAt: r.shippedAt,
  }));
}

/** Sets checked/next-check times for a batch of shipments in one statement. */
export async function scheduleTimelineChecks(
  sql: Queryable,
  p: { checkedAt: Date | null; checks: readonly { id: number; next: Date }[] },
): Promise<void> {
  if (p.checks.length === 0) return;
  await sql`
    update shipments s
       set timeline_checked_at = coalesce(${p.checkedAt ?? null}::timestamptz, s.timeline_checked_at),
           timeline_next_check_at = u.next::timestamptz
      from unnest(${p.checks.map((c) => c.id)}::bigint[], ${p.checks.map((c) => c.next.toISOString())}::text[])
           as u(id, next)
     where s.id = u.id`;
}

export async function pollTimelines(ctx: PollContext): Promise<PollResult> {
  const { sql, client, sourceId, settings } = ctx;
  const now = ctx.now();
  const result: PollResult = { stream: 'timelines', pages: 0, events: 0, inserted: 0, resumed: false };
  let calls = 0;

  while (calls < settings.timelineCallsPerRun) {
    const due = await listDueTimelines(sql, { sourceId, now, limit: Math.min(BATCH, settings.timelineCallsPerRun - calls) });
    if (due.length === 0) break;
    const events: NewInboxEvent[] = [];
    const checked: { id: number; next: Date }[] = [];
    const unshipped: { id: number; next: Date }[] = [];
    let failure: unknown;
    for (const s of due) {
      if (s.shippedAt === null) {
        unshipped.push({ id: s.id, next: new Date(now.getTime() + UNSHIPPED_RECHECK_MS) });
        continue;
      }
      calls++;
      try {
        const timeline = await client.getTimeline(s.id, ctx.signal);
        events.push(timelineEvent(sourceId, s, timeline, now));
        const delivered = timeline.some((e) => e.log_type_id === TimelineLogTypes.delivered);
        checked.push({ id: s.id, next: delivered ? TIMELINE_STOP : nextTimelineCheck(s.shippedAt, now) });
      } catch (err) {
        if (err instanceof ProviderNotFoundError) {
          checked.push({ id: s.id, next: TIMELINE_STOP });
          continue;
        }
        failure = err; // keep what this batch already fetched, then fail the run
        break;
      }
    }
    await commitPollPage(ctx, result, {
      events,
      write: async (tx) => {
        await scheduleTimelineChecks(tx, { checkedAt: now, checks: checked });
        await scheduleTimelineChecks(tx, { checkedAt: null, checks: unshipped });
      },
    });
    if (failure !== undefined) throw failure;
  }
  await markPollSuccess(sql, { sourceId, stream: 'timelines' });
  return result;
}

/**
 * A fetched timeline as an inbox event (`poll.shipment.timeline`, payload as shapes.ts documents). Entries are only
 * ever appended, so their count and newest time identify the version: an unchanged timeline deduplicates.
 */
export function timelineEvent(
  sourceId: string,
  s: { id: number; orderId: number | null },
  timeline: TimelineEntry[],
  fetchedAt: Date,
): NewInboxEvent {
  let newest: string | null = null;
  for (const e of timeline) if (newest === null || Date.parse(e.timestamp) > Date.parse(newest)) newest = e.timestamp;
  const body = { shipment_id: s.id, order_id: s.orderId, fetched_at: fetchedAt.toISOString(), timeline };
  return {
    sourceId,
    eventId: `poll:timeline:${s.id}:${timeline.length}:${newest ?? 'empty'}`,
    topic: PollTopics.timeline,
    body: JSON.stringify(body),
    headers: null,
    eventTime: parseInstant(newest) ?? fetchedAt.toISOString(),
    via: InboxVia.poll,
  };
}
