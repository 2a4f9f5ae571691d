import { InboxVia } from '../db/schema.js';
import type { NewInboxEvent } from '../inbox/insert-events.js';
import { parseInstant } from '../time.js';
import { ORDER_PAGE_LIMIT } from '../provider/client.js';
import { openPollWindow, savePollPage } from './cursors.js';
import { type PollContext, type PollResult, windowStart } from './context.js';
import type { Order } from '../provider/shapes.js';
import { PollTopics } from './streams.js';

/**
 * The orders stream: orders (with their shipments) by last-update time, in the window
 * [last end - POLL_OVERLAP_MS, now - POLL_LAG_MS], the end fixed while paging.
 *
 * Why not simply follow `next-page`: the provider pages by offset over (last_update_at, id). An order updated while
 * we page leaves the window (its new time is past the fixed end), and every later order shifts one place towards
 * the front, so the order that slid onto an already-read page would be skipped by plain page numbers, possibly for
 * good (its time can be older than the next window's start). So each request restarts at page 1 from the last time
 * seen (keyset paging over the provider's inclusive bound): nothing that stays in the window can be skipped, orders
 * that moved out are caught by the next window, and the orders sharing the boundary time are read twice (deduplicated
 * by their event ids). Only when a whole page shares one time does it fall back to the next page number.
 * `next-page` still says whether more exists.
 */

/** A committed position inside the window: the next request asks for `page` of [from, window end]. */
interface OrderPosition {
  from: string;
  page: number;
}

export async function pollOrders(ctx: PollContext): Promise<PollResult> {
  const { sql, client, sourceId, settings } = ctx;
  const now = ctx.now();
  const limit = settings.orderPageLimit ?? ORDER_PAGE_LIMIT;
  const w = await openPollWindow(sql, {
    sourceId,
    stream: 'orders',
    windowEnd: new Date(now.getTime() - settings.lagMs),
  });
  const to = w.windowEnd.toISOString();
  let pos: OrderPosition = w.token
    ? (JSON.parse(w.token) as OrderPosition)
    : { from: windowStart(w, now, settings, settings.overlapMs).toISOString(), page: 1 };
  const result: PollResult = { stream: 'orders', pages: 0, events: 0, inserted: 0, resumed: w.resumed };

  for (;;) {
    const res = await client.listOrders({ from: pos.from, to, page: pos.page, limit }, ctx.signal);
    const started = performance.now();
    const events = res.orders.map((o) => orderEvent(sourceId, o));
    const next = res.nextPage === null ? null : nextPosition(pos, res.orders);
    const inserted = await savePollPage(sql, {
      sourceId,
      stream: 'orders',
      events,
      next: next && JSON.stringify(next),
    });
    result.pages++;
    result.events += events.length;
    result.inserted += inserted;
    const wharfMs = performance.now() - started;
    await ctx.onPage?.({ stream: 'orders', page: result.pages, events: events.length, inserted, wharfMs });
    if (!next) return result;
    pos = next;
  }
}

/** The time the provider filters and sorts on: the order's last_update_at, else its newest shipment's. */
export function orderVersion(o: Order): string | null {
  if (o.last_update_at) return o.last_update_at;
  let newest: string | null = null;
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

function nextPosition(pos: OrderPosition, orders: Order[]): OrderPosition {
  const last = orders.length > 0 ? orderVersion(orders[orders.length - 1]) : null;
  if (last !== null && Date.parse(last) > Date.parse(pos.from)) return { from: last, page: 1 };
  return { from: pos.from, page: pos.page + 1 };
}
