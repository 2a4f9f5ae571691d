import { createHash } from 'node:crypto';
import { InboxVia } from '../db/schema.js';
import type { NewInboxEvent } from '../inbox/insert-events.js';
import { parseInstant } from '../time.js';
import { TRANSACTION_PAGE_SIZE } from '../provider/client.js';
import { advancePollCursor, openPollWindow } from './cursors.js';
import { commitPollPage } from './page.js';
import { ProviderRequestError } from '../provider/errors.js';
import { type PollContext, type PollResult, windowStart } from './context.js';
import type { Transaction, TransactionPage } from '../provider/shapes.js';
import { PollTopics } from './streams.js';

/**
 * The billing stream: transactions by charge date, in [last end - BILLING_RESCAN_DAYS, now - POLL_LAG_MS]. The
 * trailing re-scan is the point: a transaction is invoiced (or back-dated) after it was created, and charge date
 * is the only filter the API offers, so each poll re-reads the recent past; unchanged transactions deduplicate on
 * their event ids. The provider's cursor token is the committed position; one it no longer accepts restarts the
 * window from its first page (the re-read deduplicates).
 */
export async function pollTransactions(ctx: PollContext): Promise<PollResult> {
  const { sql, client, sourceId, settings } = ctx;
  const now = ctx.now();
  const w = await openPollWindow(sql, {
    sourceId,
    stream: 'transactions',
    windowEnd: new Date(now.getTime() - settings.lagMs),
  });
  const query = {
    from_date: windowStart(w, now, settings, Math.max(settings.billingRescanMs, settings.overlapMs)).toISOString(),
    to_date: w.windowEnd.toISOString(),
    page_size: settings.transactionPageSize ?? TRANSACTION_PAGE_SIZE,
    sort_order: 'Ascending' as const,
  };
  let cursor = w.token;
  const result: PollResult = { stream: 'transactions', pages: 0, events: 0, inserted: 0, resumed: w.resumed };

  for (;;) {
    let page: TransactionPage;
    try {
      page = await client.queryTransactions(cursor ? { cursor } : { query }, ctx.signal);
    } catch (err) {
      if (!(cursor && result.pages === 0 && err instanceof ProviderRequestError)) throw err;
      cursor = null; // the resumed cursor expired: restart this window
      continue;
    }
    const startedAt = performance.now();
    const next = page.next;
    await commitPollPage(ctx, result, {
      events: page.items.map((t) => transactionEvent(sourceId, t)),
      write: (tx) => advancePollCursor(tx, { sourceId, stream: 'transactions', next }),
      startedAt,
    });
    if (!page.next) return result;
    cursor = page.next;
  }
}

/**
 * A polled transaction as an inbox event. Its version is `last_update_at` when the provider sends one, else a digest
 * of its content, so any change (invoiced, corrected) is a new event and an unchanged re-read is a duplicate.
 */
export function transactionEvent(sourceId: string, t: Transaction): NewInboxEvent {
  const body = JSON.stringify(t);
  const version = t.last_update_at ?? `h${createHash('sha256').update(body).digest('hex').slice(0, 16)}`;
  return {
    sourceId,
    eventId: `poll:transaction:${t.transaction_id}:${version}`,
    topic: PollTopics.transaction,
    body,
    headers: null,
    eventTime: parseInstant(t.last_update_at ?? t.invoice_date ?? t.charge_date),
    via: InboxVia.poll,
  };
}
