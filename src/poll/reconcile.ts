import { DAY } from '../config.js';
import type { Queryable, Sql } from '../db/client.js';
import { ORDER_PAGE_LIMIT } from '../provider/client.js';
import type { Order } from '../provider/shapes.js';
import type { PollContext, PollResult } from './context.js';
import { orderEvent } from './orders.js';
import { commitPollPage } from './page.js';

/**
 * Reconciliation against the provider's own counts (issue #16, docs/polling.md "Reconciliation").
 *
 * For each closed UTC day of the last `days` (ending before now - POLL_LAG_MS), the orders stream: the provider's
 * `total-count` of `GET /order?LastUpdateStartDate=<start - 1 ms>&LastUpdateEndDate=<end>&Limit=1` (ONE call, the
 * incremental poller's own convention for the bounds, whichever inclusivity the server uses) against what wharf holds:
 * orders of the source whose last update lies in [start, end) and that are complete: wharf holds as many shipment rows
 * of the order as the provider listed on it (`orders.shipment_count`, stored with the order's version; an order stored
 * without a list needs one). So one lost shipment of a multi-shipment order makes its window differ, at the same one
 * call. Equal: the window is `reconciled`, one call spent. Different: the window is re-read page by page (Limit 250),
 * and every order wharf lacks, holds in an older version, or whose shipments wharf lacks in part, goes to the inbox as
 * a polled event under an id of this run (`reconcile:<run>:order:<id>:<version>`: the incremental poll's id for it is
 * already in the inbox, processed, and would deduplicate); the window is `short` until a later run counts it equal.
 * The re-read goes through the same page commit and the same client (rate budget).
 *
 * Other streams: none reports a count (docs/polling.md, with the OpenAPI's paged response schemas): billing
 * (`POST /transactions:query`), returns (`GET /return`), inventory, products, channels and webhooks answer cursor pages
 * `{items, first, next, last, prev}` without a total; timelines are per shipment. Only orders (with their shipments)
 * are reconciled.
 */

export interface ReconcileWindowResult {
  windowStart: Date;
  windowEnd: Date;
  providerCount: number | null;
  wharfCount: number;
  repolled: number;
  state: 'reconciled' | 'short';
  calls: number;
}

/** Closed UTC days, oldest first: the `days` days before the day holding now - lag. */
export function closedDayWindows(now: Date, lagMs: number, days: number): { start: Date; end: Date }[] {
  const today = Math.floor((now.getTime() - lagMs) / DAY) * DAY;
  const out: { start: Date; end: Date }[] = [];
  for (let i = days; i >= 1; i--) out.push({ start: new Date(today - i * DAY), end: new Date(today - (i - 1) * DAY) });
  return out;
}

/**
 * Orders wharf holds completely whose last update is in [start, end): as many shipment rows (of the same source) as
 * the order's version listed (`shipment_count`; null, a version without a list: at least one). Read through
 * orders_source_last_update_idx (this source's window only) and, per order, shipments_order_idx: no other source's
 * rows and no scan of shipments (test/plans/cases.ts). The count subquery is not turned into a join, so the planner
 * cannot choose a hash join over all shipments.
 */
export async function wharfOrderCount(sql: Queryable, sourceId: string, start: Date, end: Date): Promise<number> {
  const [r] = await sql<{ n: number }[]>`
    select count(*)::int as n from orders o
     where o.source_id = ${sourceId} and o.last_update_at >= ${start} and o.last_update_at < ${end}
       and (select count(*) from shipments s where s.order_id = o.id and s.source_id = o.source_id)
           >= coalesce(o.shipment_count, 1)`;
  return r.n;
}

/** Of these orders, those wharf lacks, holds in an older version (by last update), or whose shipments it lacks in
 * part (one of those listed is not held under this order). */
async function missingFrom(sql: Queryable, sourceId: string, orders: readonly Order[]): Promise<Order[]> {
  if (orders.length === 0) return [];
  const ids = orders.map((o) => o.id);
  const shipmentIds = orders.flatMap((o) => (o.shipments ?? []).map((s) => s.id));
  const heldOrders = await sql<{ id: string; lastUpdateMs: number | null }[]>`
    select id::text, (extract(epoch from last_update_at) * 1000)::float8 as "lastUpdateMs"
      from orders where source_id = ${sourceId} and id = any(${ids}::bigint[])`;
  const heldShipments = await sql<{ id: string; orderId: string | null }[]>`
    select id::text, order_id::text as "orderId" from shipments where source_id = ${sourceId} and id = any(${shipmentIds}::bigint[])`;
  const o = new Map(heldOrders.map((r) => [r.id, r.lastUpdateMs]));
  const s = new Map(heldShipments.map((r) => [r.id, r.orderId]));
  const older = (x: Order) => {
    // The order's own update time, else its newest shipment's: what the normaliser stores as last_update_at.
    const times = [x.last_update_at, ...(x.shipments ?? []).map((sh) => sh.last_update_at)].map((v) => (v ? Date.parse(v) : Number.NaN));
    const listed = Number.isFinite(times[0]) ? times[0] : Math.max(...times.slice(1).filter(Number.isFinite));
    const held = o.get(String(x.id));
    return Number.isFinite(listed) && (held === null || held === undefined || Math.floor(held) < Math.floor(listed));
  };
  return orders.filter(
    (x) => !o.has(String(x.id)) || older(x) || (x.shipments ?? []).some((sh) => s.get(String(sh.id)) !== String(x.id)),
  );
}

async function recordWindow(sql: Sql, sourceId: string, r: ReconcileWindowResult, checkedAt: Date) {
  await sql`
    insert into reconcile_windows (source_id, stream, window_start, window_end, provider_count, wharf_count, repolled, state, checked_at)
    values (${sourceId}, 'orders', ${r.windowStart}, ${r.windowEnd}, ${r.providerCount}, ${r.wharfCount}, ${r.repolled}, ${r.state}, ${checkedAt})
    on conflict (source_id, stream, window_start) do update
       set window_end = excluded.window_end, provider_count = excluded.provider_count, wharf_count = excluded.wharf_count,
           repolled = excluded.repolled, state = excluded.state, checked_at = excluded.checked_at`;
}

/** Checks (and repairs) one window of one source's orders. */
export async function reconcileOrdersWindow(ctx: PollContext, start: Date, end: Date): Promise<ReconcileWindowResult> {
  const before = ctx.client.stats.calls;
  const checkedAt = new Date();
  const range = { from: new Date(start.getTime() - 1).toISOString(), to: new Date(end.getTime()).toISOString() };
  const head = await ctx.client.listOrders({ ...range, page: 1, limit: 1 }, ctx.signal);
  const providerCount = head.totalCount;
  const wharfCount = await wharfOrderCount(ctx.sql, ctx.sourceId, start, end);
  const r: ReconcileWindowResult = { windowStart: start, windowEnd: end, providerCount, wharfCount, repolled: 0, state: 'reconciled', calls: 0 };
  if (providerCount === null || providerCount !== wharfCount) {
    r.state = 'short';
    const result: PollResult = { stream: 'orders', pages: 0, events: 0, inserted: 0, resumed: false };
    const run = checkedAt.getTime();
    const maxPages = Math.ceil((providerCount ?? 10 * ORDER_PAGE_LIMIT) / ORDER_PAGE_LIMIT) + 2;
    for (let page = 1; page <= maxPages; page++) {
      const res = await ctx.client.listOrders({ ...range, page, limit: ORDER_PAGE_LIMIT }, ctx.signal);
      const missing = await missingFrom(ctx.sql, ctx.sourceId, res.orders);
      const events = missing.map((o) => {
        const e = orderEvent(ctx.sourceId, o);
        return { ...e, eventId: `reconcile:${run}:${e.eventId.replace(/^poll:/, '')}` };
      });
      r.repolled += await commitPollPage(ctx, result, { events });
      if (res.orders.length < ORDER_PAGE_LIMIT || res.nextPage === null) break;
    }
  }
  r.calls = ctx.client.stats.calls - before;
  await recordWindow(ctx.sql, ctx.sourceId, r, checkedAt);
  return r;
}

/**
 * Reconciles a source's orders over the last `days` closed days; one call per window when nothing is missing. Then
 * forgets the source's reconciled windows older than those checked (no run looks at them again), so the table holds
 * about `days` rows per source; a window that left the range still short stays listed, as it was last found.
 */
export async function reconcileSource(ctx: PollContext, days: number): Promise<ReconcileWindowResult[]> {
  const out: ReconcileWindowResult[] = [];
  const windows = closedDayWindows(ctx.now(), ctx.settings.lagMs, days);
  for (const w of windows) out.push(await reconcileOrdersWindow(ctx, w.start, w.end));
  if (windows.length > 0) {
    await ctx.sql`
      delete from reconcile_windows
       where source_id = ${ctx.sourceId} and stream = 'orders' and window_start < ${windows[0].start} and state = 'reconciled'`;
  }
  return out;
}

export interface ReconcileStatus {
  sourceId: string;
  stream: string;
  /** End of the newest window that is reconciled, or null. */
  newestReconciled: Date | null;
  /** Windows still short (start, provider count, wharf count), oldest first. */
  short: { windowStart: Date; providerCount: number | null; wharfCount: number }[];
}

/** Per source and stream: the newest reconciled window and the windows still short (for ops status, the gauges and
 * the ops page). Bounded: at most 100,000 windows are read (the table holds about RECONCILE_DAYS per source and
 * stream, plus windows that stayed short). */
export async function reconcileStatus(sql: Queryable): Promise<ReconcileStatus[]> {
  const rows = await sql<{ sourceId: string; stream: string; windowStart: Date; windowEnd: Date; state: string; providerCount: number | null; wharfCount: number }[]>`
    select source_id as "sourceId", stream, window_start as "windowStart", window_end as "windowEnd", state,
           provider_count as "providerCount", wharf_count as "wharfCount"
      from reconcile_windows
     order by source_id, stream, window_start
     limit 100000`;
  const by = new Map<string, ReconcileStatus>();
  for (const r of rows) {
    const key = `${r.sourceId}\u0000${r.stream}`;
    let s = by.get(key);
    if (!s) by.set(key, (s = { sourceId: r.sourceId, stream: r.stream, newestReconciled: null, short: [] }));
    if (r.state === 'reconciled') s.newestReconciled = r.windowEnd;
    else s.short.push({ windowStart: r.windowStart, providerCount: r.providerCount, wharfCount: r.wharfCount });
  }
  return [...by.values()];
}
