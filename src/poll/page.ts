import type { Queryable } from '../db/client.js';
import { insertInboxEvents, type NewInboxEvent } from '../inbox/insert-events.js';
import type { PollContext, PollResult } from './context.js';

/**
 * The one page commit every poller uses: a page's events go into the inbox in the same transaction as the stream's
 * own bookkeeping for that page (`write`: the cursor's new position, timeline due times, 404s remembered), so a crash
 * keeps both or neither. Then the run's result is counted and `onPage` told, with the time spent in wharf (building
 * was done by the caller; this measures the commit). Returns how many events were new to the inbox (repeats
 * deduplicate on their deterministic ids).
 */
export async function commitPollPage(
  ctx: PollContext,
  result: PollResult,
  page: { events: readonly NewInboxEvent[]; write?: (tx: Queryable) => Promise<unknown>; startedAt?: number },
): Promise<number> {
  const started = page.startedAt ?? performance.now();
  const inserted = await ctx.sql.begin(async (tx) => {
    const results = await insertInboxEvents(tx, page.events);
    if (page.write) await page.write(tx);
    return results.filter((r) => r.inserted).length;
  });
  result.pages++;
  result.events += page.events.length;
  result.inserted += inserted;
  const wharfMs = performance.now() - started;
  await ctx.onPage?.({ stream: result.stream, page: result.pages, events: page.events.length, inserted, wharfMs });
  return inserted;
}
