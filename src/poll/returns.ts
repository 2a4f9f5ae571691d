import { HOUR } from '../config.js';
import { InboxVia } from '../db/schema.js';
import type { NewInboxEvent } from '../inbox/insert-events.js';
import { commitPollPage } from './page.js';
import type { Queryable } from '../db/client.js';
import { parseInstant } from '../time.js';
import { advancePollCursor, openPollWindow } from './cursors.js';
import { type PollContext, type PollResult, windowStart } from './context.js';
import type { ReturnListRequest } from '../provider/client.js';
import type { Return } from '../provider/shapes.js';
import { PollTopics } from './streams.js';

/**
 * The returns stream. OA documents `GET /return` (filters on status, creation and completion dates; no last-update
 * filter, and a return has no update time), so each run, in a window like the orders stream's:
 *
 * 1. lists, page by page (each page committed with its position, so a killed run resumes there):
 *    - every open return (`Status=AwaitingArrival,Arrived,Processing`), whatever its age: the re-read on a schedule that
 *      catches a lost last webhook (the one that would have moved it on);
 *    - returns created since the window start (`StartDate`), and completed since then (`CompletedStartDate`): what
 *      left the open list between runs;
 *    - cancelled returns created within the backfill horizon (no cancellation-date filter is documented);
 *    each as a `poll.return` event whose id is its status and latest life-cycle time, so an unchanged return
 *    deduplicates;
 * 2. then asks by id (`Ids=a,b,…`, one call per batch) for the returns that pending `Return` charges name and
 *    `returns` lacks (older than the horizon, or never listed). Ids the provider does not return are remembered on the
 *    charges (`attribution_reason = 'return_not_found'`) and not asked again for RETURN_NOT_FOUND_RECHECK_MS.
 * The drain keeps a return from moving back in its life cycle (wharf_return_status_rank), whatever order the webhooks
 * and polls arrive in.
 */

export const OPEN_RETURN_STATUSES = ['AwaitingArrival', 'Arrived', 'Processing'] as const;

export const RETURN_NOT_FOUND = 'return_not_found';
/** How long a return the provider answered 404 for is left alone. A changed charge on it is asked about at once. */
export const RETURN_NOT_FOUND_RECHECK_MS = 6 * HOUR;
const BATCH = 50;

/**
 * Ids (as text, ascending, after `afterId`) of the returns a source's pending `Return` charges reference that are not
 * in `returns`, leaving out those answered 404 within RETURN_NOT_FOUND_RECHECK_MS. One statement, walking the partial
 * index `transactions_pending_ref_idx` (reference_type, reference_id) in order from `afterId`, so a bounded run reads
 * only as far as it needs. May return fewer than asked.
 */
export async function listUnknownReturns(
  sql: Queryable,
  p: { sourceId: string; afterId: string; limit: number },
): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select distinct t.reference_id as id
      from transactions t
     where t.attribution_status = 'pending' and t.reference_type = 'Return' and t.reference_id > ${p.afterId}
       and t.source_id = ${p.sourceId}
       and t.reference_id ~ '^[0-9]{1,18}$'
       and (t.attribution_reason is distinct from ${RETURN_NOT_FOUND}
            or t.updated_at <= now() - ${RETURN_NOT_FOUND_RECHECK_MS}::float8 * interval '1 millisecond')
       and not exists (
         select 1 from returns r
          where r.id = case when t.reference_id ~ '^[0-9]{1,18}$' then t.reference_id::bigint end)
     order by t.reference_id
     limit ${p.limit}::int`;
  return rows.map((r) => r.id);
}

/**
 * Records that the provider does not know these returns: their pending charges get the reason `return_not_found`
 * and `updated_at` now (the clock of the recheck). Charges already attributed are untouched; rows are locked in
 * transaction id order, as the drain's upserts lock them. One statement.
 */
export async function markReturnsNotFound(sql: Queryable, p: { sourceId: string; returnIds: readonly string[] }): Promise<void> {
  if (p.returnIds.length === 0) return;
  await sql`
    update transactions t set attribution_reason = ${RETURN_NOT_FOUND}, updated_at = now()
      from (select transaction_id from transactions
             where attribution_status = 'pending' and reference_type = 'Return'
               and reference_id = any(${p.returnIds as string[]}::text[]) and source_id = ${p.sourceId}
             order by transaction_id
               for update) l
     where t.transaction_id = l.transaction_id`;
}

interface ReturnPosition {
  /** Index into the run's list queries. */
  q: number;
  cursor: number;
}

export async function pollReturns(ctx: PollContext): Promise<PollResult> {
  const { sql, client, sourceId, settings } = ctx;
  const now = ctx.now();
  const w = await openPollWindow(sql, { sourceId, stream: 'returns', windowEnd: new Date(now.getTime() - settings.lagMs) });
  const start = windowStart(w, now, settings, settings.overlapMs).toISOString();
  const horizon = new Date(now.getTime() - settings.backfillMs).toISOString();
  const queries: ReturnListRequest[] = [
    { statuses: OPEN_RETURN_STATUSES },
    { startDate: start },
    { completedStartDate: start },
    { statuses: ['Cancelled'], startDate: horizon },
  ];
  const result: PollResult = { stream: 'returns', pages: 0, events: 0, inserted: 0, resumed: w.resumed };
  let pos: ReturnPosition = parseReturnPosition(w.token) ?? { q: 0, cursor: 1 };
  const listed = new Set<string>();
  while (pos.q < queries.length) {
    const page = await client.listReturns({ ...queries[pos.q], cursor: pos.cursor }, ctx.signal);
    for (const r of page.items) listed.add(String(r.id));
    const startedAt = performance.now();
    const next: ReturnPosition = page.nextCursor !== null ? { q: pos.q, cursor: page.nextCursor } : { q: pos.q + 1, cursor: 1 };
    const last = next.q >= queries.length;
    await commitPollPage(ctx, result, {
      events: page.items.map((r) => returnEvent(sourceId, r)),
      write: (tx) => advancePollCursor(tx, { sourceId, stream: 'returns', next: last ? null : JSON.stringify(next) }),
      startedAt,
    });
    pos = next;
  }
  await fetchUnknownReturns(ctx, result, listed);
  return result;
}

function parseReturnPosition(token: string | null): ReturnPosition | null {
  if (!token) return null;
  try {
    const p = JSON.parse(token) as ReturnPosition;
    if (Number.isInteger(p.q) && Number.isInteger(p.cursor) && p.cursor >= 1) return p;
  } catch {
    // not ours: start the window over (re-reads deduplicate)
  }
  return null;
}

/** Phase 2: returns pending charges name that `returns` lacks, asked by id in batches; a bounded number of calls. */
async function fetchUnknownReturns(ctx: PollContext, result: PollResult, listed: ReadonlySet<string>): Promise<void> {
  const { sql, client, sourceId, settings } = ctx;
  let calls = 0;
  // Keyset within the run: returns just fetched are not applied yet, so they would be listed again.
  let afterId = '';
  while (calls < settings.returnCallsPerRun) {
    const unknown = await listUnknownReturns(sql, { sourceId, afterId, limit: BATCH });
    if (unknown.length === 0) break;
    afterId = unknown[unknown.length - 1];
    // Listed by this run but not applied yet: not unknown.
    const ids = unknown.filter((id) => !listed.has(id));
    if (ids.length === 0) continue;
    calls++;
    const page = await client.listReturns({ ids: ids.map(Number), limit: BATCH }, ctx.signal);
    const found = new Set(page.items.map((r) => String(r.id)));
    const missing = ids.filter((id) => !found.has(id));
    await commitPollPage(ctx, result, {
      events: page.items.filter((r) => ids.includes(String(r.id))).map((r) => returnEvent(sourceId, r)),
      write: (tx) => markReturnsNotFound(tx, { sourceId, returnIds: missing }),
    });
  }
}

/** A return's version: its status and the newest of its life-cycle times (OA gives a return no update time). */
export function returnVersion(ret: Return): { status: string; at: string | null } {
  let newest: number | undefined;
  const take = (v: unknown) => {
    const ms = typeof v === 'string' ? Date.parse(v) : Number.NaN;
    if (Number.isFinite(ms) && (newest === undefined || ms > newest)) newest = ms;
  };
  for (const v of [ret.insert_date, ret.awaiting_arrival_date, ret.arrived_date, ret.processing_date, ret.completed_date, ret.cancelled_date])
    take(v);
  for (const h of Array.isArray(ret.status_history) ? ret.status_history : []) take(h?.timestamp);
  return { status: String(ret.status ?? '').replace(/\s/g, ''), at: newest === undefined ? null : new Date(newest).toISOString() };
}

/** A fetched return as an inbox event; its id changes only when the return does, so re-reads deduplicate. */
export function returnEvent(sourceId: string, ret: Return): NewInboxEvent {
  const v = returnVersion(ret);
  return {
    sourceId,
    eventId: `poll:return:${ret.id}:${v.status}:${v.at ?? 'undated'}`,
    topic: PollTopics.return,
    body: JSON.stringify(ret),
    headers: null,
    eventTime: parseInstant(v.at),
    via: InboxVia.poll,
  };
}
