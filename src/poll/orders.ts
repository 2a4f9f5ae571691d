import { InboxVia } from '../db/schema.js';
import type { NewInboxEvent } from '../inbox/insert-events.js';
import { parseInstant } from '../time.js';
import { ORDER_PAGE_LIMIT, type OrderPage } from '../provider/client.js';
import { advancePollCursor, openPollWindow } from './cursors.js';
import { type PollContext, type PollResult, windowStart } from './context.js';
import { commitPollPage } from './page.js';
import type { Order } from '../provider/shapes.js';
import { PollTopics } from './streams.js';

/**
 * The orders stream: orders (with their shipments) changed in the window [last end - POLL_OVERLAP_MS,
 * now - POLL_LAG_MS], the end fixed while the run lasts.
 *
 * What the provider promises (docs/provider.md): a filter on last-update time ("updated later than"; inclusivity not
 * documented), offset pages, and a sort order that is NOT by update time (`SortOrder` is by creation, or unstated).
 * So the window is read as consecutive sub-windows, each read in ONE request whose answer holds every order of it:
 *
 * - A sub-window covers the update times whose millisecond is in [pos, end); it is asked as
 *   `LastUpdateStartDate = pos - 1 ms`, `LastUpdateEndDate = end`, which covers it whether each bound is exclusive
 *   or inclusive (the extra millisecond at either edge is read twice and deduplicates).
 * - The answer is complete when `total-count` <= Limit (or, without that header, undocumented, when the page is not
 *   full). Then the sub-window is done, whatever order the server sorted it in. Otherwise its page is still stored
 *   (real states, deduplicated later) and the sub-window shrinks to the width that `total-count` says holds
 *   FILL × Limit orders (a quarter of it without the header), and is asked again.
 * - The next sub-window's width is the last one's density scaled to FILL × Limit (at most 4× wider), so a run costs
 *   about N / (FILL × Limit) requests plus one per overflow, in any sort order.
 * - A single millisecond holding more than Limit orders (ties) cannot be narrowed: it is read page by page, and
 *   read again from page 1 if its total-count changed between pages (an order left and shifted the rest), at most
 *   TIE_PASSES times.
 *
 * Why nothing is missed, also while orders change between requests: the window ends at now - lag when the run
 * starts, so an order changed during the run gets an update time after the window's end: the next window (which
 * starts POLL_OVERLAP_MS before this one's end) holds it. An order not changed during the run keeps its update time
 * u in the window; the one sub-window containing u is read in a single answer after u, which holds it at that state,
 * its latest. Orders only leave a past window (by being changed), they do not enter it, except for late writes and
 * clock skew, which the overlap is for. Each answer commits with the next sub-window's start and width, so a
 * killed run resumes at the first sub-window it had not finished.
 */

/** Share of a page a sub-window is sized to hold: lower costs more requests, higher overflows more often. */
export const ORDER_FILL = 0.8;
/** One millisecond: the unit sub-windows are cut in and the overlap each request adds at its start. */
const TICK_MS = 1;
/** A sub-window may grow at most this much from one request to the next. */
const MAX_GROWTH = 4;
/** Page-by-page reads of one tied millisecond before its last read is accepted as it is. */
export const TIE_PASSES = 5;

/** The committed position inside the window: the next sub-window starts at `from` (epoch ms) and spans `width`. */
export interface OrderPosition {
  from: number;
  width: number;
  /** Reading one tied millisecond page by page: the next page, and the total-count its first page saw. */
  tie?: { page: number; count: number | null; pass: number };
  /** What the last overflowing answer said lies ahead: about `count` orders in [from, end). */
  ahead?: { end: number; count: number };
}

export async function pollOrders(ctx: PollContext): Promise<PollResult> {
  const { sql, client, sourceId, settings } = ctx;
  const now = ctx.now();
  const limit = Math.min(settings.orderPageLimit ?? ORDER_PAGE_LIMIT, ORDER_PAGE_LIMIT);
  const target = Math.max(1, Math.floor(limit * ORDER_FILL));
  const w = await openPollWindow(sql, {
    sourceId,
    stream: 'orders',
    windowEnd: new Date(now.getTime() - settings.lagMs),
  });
  /** Exclusive end, in ms: update times whose millisecond is at most the window's end are in. */
  const last = Math.floor(w.windowEnd.getTime() / TICK_MS) * TICK_MS + TICK_MS;
  const start = windowStart(w, now, settings, settings.overlapMs).getTime();
  let pos: OrderPosition = parsePosition(w.token) ?? { from: start, width: Math.max(TICK_MS, last - start) };
  const result: PollResult = { stream: 'orders', pages: 0, events: 0, inserted: 0, resumed: w.resumed };

  for (;;) {
    const end = Math.min(pos.from + pos.width, last);
    const span = end - pos.from;
    const page = pos.tie?.page ?? 1;
    const res = await client.listOrders(
      { from: new Date(pos.from - TICK_MS).toISOString(), to: new Date(end).toISOString(), page, limit },
      ctx.signal,
    );
    const startedAt = performance.now();
    const next = nextPosition(pos, span, end, res, { limit, target, page });
    const done = next.from >= last;
    await commitPollPage(ctx, result, {
      events: res.orders.map((o) => orderEvent(sourceId, o)),
      write: (tx) => advancePollCursor(tx, { sourceId, stream: 'orders', next: done ? null : JSON.stringify(next) }),
      startedAt,
    });
    if (done) return result;
    pos = next;
  }
}

/** Where to go after an answer for [pos.from, end) (page `page` of it). Pure: the heart of the design above. */
export function nextPosition(
  pos: OrderPosition,
  span: number,
  end: number,
  res: Pick<OrderPage, 'orders' | 'totalCount'>,
  o: { limit: number; target: number; page: number },
): OrderPosition {
  const count = res.totalCount;
  const complete = count !== null ? count <= o.limit : res.orders.length < o.limit;
  const scaled = (n: number) => Math.max(TICK_MS, Math.floor((span * o.target) / Math.max(1, n)));

  if (pos.tie) {
    // A tied millisecond, page by page: done after its last page unless total-count moved under us.
    const tie = pos.tie;
    const moved = count !== null && tie.count !== null && count !== tie.count;
    if (moved && tie.pass < TIE_PASSES) return { from: pos.from, width: TICK_MS, tie: { page: 1, count: null, pass: tie.pass + 1 } };
    const lastPage = count !== null ? o.page * o.limit >= count : res.orders.length < o.limit;
    if (!lastPage) return { from: pos.from, width: TICK_MS, tie: { page: o.page + 1, count: tie.count ?? count, pass: tie.pass } };
    return { from: end, width: TICK_MS * MAX_GROWTH };
  }
  if (complete) {
    const n = count ?? res.orders.length;
    const next: OrderPosition = { from: end, width: n === 0 ? pos.width * MAX_GROWTH : Math.min(scaled(n), span * MAX_GROWTH) };
    if (pos.ahead && end < pos.ahead.end) {
      // The rest of the last overflowing range holds about what it held minus what this answer took.
      const rest = Math.max(0, pos.ahead.count - n);
      const restSpan = pos.ahead.end - end;
      const byRest = rest <= o.target ? restSpan : Math.floor((restSpan * o.target) / rest);
      // An empty answer says nothing about the density ahead: size by the rest's average instead.
      next.width = n === 0 ? byRest : Math.min(next.width, rest <= o.target ? restSpan : next.width);
      next.ahead = { end: pos.ahead.end, count: rest };
    }
    next.width = Math.max(TICK_MS, next.width);
    return next;
  }
  if (span <= TICK_MS) {
    // This page was page 1 of the tied millisecond: go on with page 2.
    return { from: pos.from, width: TICK_MS, tie: { page: o.page + 1, count, pass: 1 } };
  }
  // Too many for one answer: narrow to what total-count says fits (a quarter without it) and ask again.
  if (count === null) return { from: pos.from, width: Math.max(TICK_MS, Math.floor(span / 4)) };
  return { from: pos.from, width: Math.min(scaled(count), span - TICK_MS), ahead: { end, count } };
}

function parsePosition(token: string | null): OrderPosition | null {
  if (!token) return null;
  try {
    const p = JSON.parse(token) as OrderPosition;
    if (Number.isFinite(p.from) && Number.isFinite(p.width) && p.width >= TICK_MS) return p;
  } catch {
    // a position from an older release (keyset): restart the window, the re-read deduplicates
  }
  return null;
}

/**
 * The version an order carries: OA's Order has no update time, so its newest shipment's last_update_at (any change
 * of an order shows there in practice), else a `last_update_at` on the order when one is sent, else its creation.
 */
export function orderVersion(o: Order): string | null {
  let newest: string | null = o.last_update_at ?? null;
  for (const s of o.shipments ?? []) {
    if (s.last_update_at && (newest === null || Date.parse(s.last_update_at) > Date.parse(newest))) {
      newest = s.last_update_at;
    }
  }
  return newest ?? o.created_date ?? null;
}

/** A polled order as an inbox event; its id changes only when the order does, so re-reads deduplicate. */
export function orderEvent(sourceId: string, o: Order): NewInboxEvent {
  const version = orderVersion(o);
  return {
    sourceId,
    eventId: `poll:order:${o.id}:${version ?? 'unversioned'}`,
    topic: PollTopics.order,
    body: JSON.stringify(o),
    headers: null,
    eventTime: parseInstant(version),
    via: InboxVia.poll,
  };
}
