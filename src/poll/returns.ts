import { HOUR } from '../config.js';
import type { Sql } from '../db/client.js';
import { InboxVia } from '../db/schema.js';
import { insertInboxEvents, type NewInboxEvent } from '../inbox/insert-events.js';
import type { Queryable } from '../db/client.js';
import { parseInstant } from '../time.js';
import { markPollSuccess } from './cursors.js';
import { ProviderNotFoundError } from '../provider/errors.js';
import type { PollContext, PollResult } from './context.js';
import type { Return } from '../provider/shapes.js';
import { PollTopics } from './streams.js';

/**
 * The returns stream. The provider lists no returns, so a return whose webhooks were all lost would never arrive and
 * the charges on it would stay `pending` forever. This stream finds those charges (pending, `Return`, the return
 * unknown), fetches each return by id and stores it as a `poll.return` event, applied like a `return.*` webhook
 * (which then attributes the charges). A 404 is remembered on the charges (`attribution_reason = 'return_not_found'`,
 * the reason they stay unattributed) and not asked again for RETURN_NOT_FOUND_RECHECK_MS, so a return the provider
 * does not know does not cost a call every run. A run fetches at most `returnCallsPerRun` returns.
 * Returns never charged for stay out of reach: nothing names them.
 */

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

export async function pollReturns(ctx: PollContext): Promise<PollResult> {
  const { sql, client, sourceId, settings } = ctx;
  const result: PollResult = { stream: 'returns', pages: 0, events: 0, inserted: 0, resumed: false };
  let calls = 0;
  // Keyset within the run: returns just fetched are not applied yet, so they would be listed again.
  let afterId = '';

  while (calls < settings.returnCallsPerRun) {
    const ids = await listUnknownReturns(sql, { sourceId, afterId, limit: Math.min(BATCH, settings.returnCallsPerRun - calls) });
    if (ids.length === 0) break;
    afterId = ids[ids.length - 1];
    const events: NewInboxEvent[] = [];
    const missing: string[] = [];
    let failure: unknown;
    for (const id of ids) {
      calls++;
      try {
        events.push(returnEvent(sourceId, await client.getReturn(Number(id), ctx.signal)));
      } catch (err) {
        if (err instanceof ProviderNotFoundError) {
          missing.push(id);
          continue;
        }
        failure = err; // keep what this batch already fetched, then fail the run
        break;
      }
    }
    const started = performance.now();
    const inserted = await saveReturns(sql, { sourceId, events, missing });
    result.pages++;
    result.events += events.length;
    result.inserted += inserted;
    const wharfMs = performance.now() - started;
    await ctx.onPage?.({ stream: 'returns', page: result.pages, events: events.length, inserted, wharfMs });
    if (failure !== undefined) throw failure;
  }
  await markPollSuccess(sql, { sourceId, stream: 'returns' });
  return result;
}

/** A batch's returns and its 404s, in one transaction. Returns how many events were new to the inbox. */
async function saveReturns(
  sql: Sql,
  p: { sourceId: string; events: readonly NewInboxEvent[]; missing: readonly string[] },
): Promise<number> {
  return sql.begin(async (tx) => {
    const results = await insertInboxEvents(tx, p.events);
    await markReturnsNotFound(tx, { sourceId: p.sourceId, returnIds: p.missing });
    return results.filter((r) => r.inserted).length;
  });
}

/** A fetched return as an inbox event; its id changes only when the return does, so re-reads deduplicate. */
export function returnEvent(sourceId: string, ret: Return): NewInboxEvent {
  return {
    sourceId,
    eventId: `poll:return:${ret.id}:${ret.last_update_at ?? 'unversioned'}`,
    topic: PollTopics.return,
    body: JSON.stringify(ret),
    headers: null,
    eventTime: parseInstant(ret.last_update_at),
    via: InboxVia.poll,
  };
}
