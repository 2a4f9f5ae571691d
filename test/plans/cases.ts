import type { Config } from '../../src/config.js';
import type { Sql } from '../../src/db/client.js';
import { attributePendingTransactions } from '../../src/apply/attribution.js';
import { claimInboxChunk } from '../../src/inbox/claim.js';
import { deleteProcessedBatch, lastInboxIdBefore, pruneInbox } from '../../src/inbox/prune.js';
import { explainEntity } from '../../src/ops/explain.js';
import { startGaugeRefresher } from '../../src/ops/metrics-gauges.js';
import { readDeadLetter, readOpsPage } from '../../src/ops/page/queries.js';
import { readStatus } from '../../src/ops/status.js';
import { sampleOpsMetrics } from '../../src/worker/ops-samples.js';
import type { PollContext, PollResult } from '../../src/poll/context.js';
import { advancePollCursor, openPollWindow } from '../../src/poll/cursors.js';
import { commitPollPage } from '../../src/poll/page.js';
import { wharfOrderCount } from '../../src/poll/reconcile.js';
import { listUnknownReturns, markReturnsNotFound } from '../../src/poll/returns.js';
import { listDueTimelines } from '../../src/poll/timelines.js';
import { DAY } from '../../src/config.js';
import { inRollback } from './plan.js';

/**
 * The hot queries whose plans test/plans/plans.test.ts proves, one row each. A row calls the real function (through a
 * pool that captures what it sends); the test EXPLAINs exactly those statements. To check a new query (ops explain,
 * the ops page), add a row: `todo` rows are reported as such until their function exists on this branch.
 */

export interface PlanContext {
  /** The seed's clock. */
  now: Date;
  shipments: number;
  sources: number;
  config: Config;
  /** A pool that does not capture (for bounds computed from the data). */
  plain: Sql;
}

export interface PlanCase {
  /** Snapshot file name (test/plans/snapshots/<name>.sql). */
  name: string;
  /** The function whose statements are checked, and its file. */
  fn: string;
  /** A known problem (or a function not on this branch yet): the row runs, and its failures are reported as todo. */
  todo?: string;
  run?: (sql: Sql, c: PlanContext) => Promise<unknown>;
  /** Which captured statements to check (default: every one); `begin`, `commit` and the like are never checked. */
  pick?: (text: string) => boolean;
  /** Indexes the checked plans must use (each in at least one statement). */
  indexes: string[];
  /** Per statement: rows scanned and thrown away (filter, recheck) at most (default 0). */
  maxRowsDropped?: number | ((c: PlanContext) => Promise<number>);
  /** The index serves the order: no sort at all. */
  indexOrder?: boolean;
  /** Per statement: rows a sort may take in (default: no more than the statement returns). */
  maxSortRows?: number;
}

/**
 * Tables that grow with the data: never read by a sequential scan in a hot query. Not quarantine and its counters:
 * bounded per source, reason and hour (docs/intake.md), like poll_cursors per source and stream.
 */
export const GROWING_TABLES = ['inbox_events', 'orders', 'shipments', 'shipment_timeline', 'returns', 'transactions'];

const sourceId = 'src-3';

export const planCases: PlanCase[] = [
  {
    name: 'claim-inbox-chunk',
    fn: 'claimInboxChunk (src/inbox/claim.ts)',
    run: (sql) => inRollback(sql, (tx) => claimInboxChunk(tx, 500)),
    pick: (q) => q.includes('skip locked'),
    indexes: ['inbox_events_pending_idx'],
    // The index gives the claim's order; the statement then ranks the claimed rows (a sort of those 500 only).
  },
  {
    name: 'claim-inbox-chunk-express',
    fn: 'claimInboxChunk (src/inbox/claim.ts): the express lane (light sources only)',
    run: (sql) => inRollback(sql, (tx) => claimInboxChunk(tx, 500, Number.MAX_SAFE_INTEGER, { lane: 'express', perSource: 50 })),
    pick: (q) => q.includes('skip locked'),
    indexes: ['inbox_events_pending_by_source_idx'],
  },
  {
    name: 'claim-inbox-chunk-bulk',
    fn: 'claimInboxChunk (src/inbox/claim.ts): the bulk lane (backlogged sources only)',
    run: (sql) => inRollback(sql, (tx) => claimInboxChunk(tx, 500, Number.MAX_SAFE_INTEGER, { lane: 'bulk', perSource: 50 })),
    pick: (q) => q.includes('skip locked'),
    indexes: ['inbox_events_pending_by_source_idx', 'inbox_events_pending_idx'],
  },
  {
    name: 'list-due-timelines',
    fn: 'listDueTimelines (src/poll/timelines.ts): one batch of a source',
    run: (sql, c) => listDueTimelines(sql, { sourceId, now: c.now, limit: 50 }),
    indexes: ['shipments_timeline_due_source_idx'],
    indexOrder: true,
  },
  {
    name: 'list-due-timelines-round-end',
    fn: 'listDueTimelines (src/poll/timelines.ts): the call that ends a source\'s round (fewer due than asked)',
    // 20 minutes earlier, fewer than 50 are due: the scan must stop at the first one not due, not read the rest.
    run: (sql, c) => listDueTimelines(sql, { sourceId, now: new Date(c.now.getTime() - 20 * 60_000), limit: 50 }),
    indexes: ['shipments_timeline_due_source_idx'],
    indexOrder: true,
  },
  {
    name: 'attribute-pending-transactions',
    fn: 'attributePendingTransactions (src/apply/attribution.ts): the catch-up of a 500-event chunk',
    run: async (sql, c) => {
      // Pending shipment charges reference ids just past the seeded shipments (their shipments not arrived yet).
      const shipmentIds = Array.from({ length: 400 }, (_, i) => c.shipments + 1 + i * 3);
      const returnIds = Array.from({ length: 50 }, (_, i) => 1 + i);
      const pending = await c.plain<{ id: string }[]>`
        select transaction_id as id from transactions where attribution_status = 'pending' order by transaction_id limit 50`;
      return inRollback(sql, (tx) =>
        attributePendingTransactions(tx, { shipmentIds, returnIds, transactionIds: pending.map((p) => p.id) }),
      );
    },
    indexes: ['transactions_pending_ref_idx', 'transactions_pkey'],
    // The candidates are sorted (lock order): the charges it may attribute, never more than it looked up.
    maxSortRows: 500,
    maxRowsDropped: 50,
  },
  {
    name: 'list-unknown-returns',
    fn: 'listUnknownReturns (src/poll/returns.ts)',
    run: (sql) => listUnknownReturns(sql, { sourceId, afterId: '', limit: 50 }),
    indexes: ['transactions_pending_return_idx', 'returns_pkey'],
    // Charges on returns answered 404 within the recheck period are read and skipped: at most this source's.
    maxRowsDropped: async (c) => {
      const [r] = await c.plain`
        select count(*)::int as n from transactions
         where attribution_status = 'pending' and reference_type = 'Return' and source_id = ${sourceId}`;
      return r.n;
    },
  },
  {
    name: 'mark-returns-not-found',
    fn: 'markReturnsNotFound (src/poll/returns.ts)',
    run: async (sql, c) => {
      const ids = await listUnknownReturns(c.plain, { sourceId, afterId: '', limit: 50 });
      return inRollback(sql, (tx) => markReturnsNotFound(tx, { sourceId, returnIds: ids }));
    },
    pick: (q) => q.includes('update transactions'),
    indexes: ['transactions_pending_return_idx', 'transactions_pkey'],
    maxSortRows: 50,
  },
  {
    name: 'transactions-poll-page',
    fn: 'openPollWindow, commitPollPage and advancePollCursor (src/poll): a transactions poll page',
    run: async (sql, c) => {
      await openPollWindow(sql, { sourceId, stream: 'transactions', windowEnd: c.now });
      const events = Array.from({ length: 100 }, (_, i) => ({
        sourceId,
        eventId: `plan-tx-${i}`,
        topic: 'poll.transaction',
        body: '{}',
        headers: null,
        eventTime: c.now.toISOString(),
        via: 'poll' as const,
      }));
      // commitPollPage reads only the pool and onPage of its context.
      const ctx = { sql } as unknown as PollContext;
      const result: PollResult = { stream: 'transactions', pages: 0, events: 0, inserted: 0, resumed: false };
      return commitPollPage(ctx, result, {
        events,
        write: (tx) => advancePollCursor(tx, { sourceId, stream: 'transactions', next: null }),
      });
    },
    // poll_cursors has a row per source and stream: its scans are not checked; the inbox insert is.
    indexes: [],
  },
  {
    name: 'reconcile-wharf-count',
    fn: "wharfOrderCount (src/poll/reconcile.ts): a source's complete orders of 30 days",
    run: (sql, c) => wharfOrderCount(sql, sourceId, ...reconcileSpan(c)),
    indexes: ['orders_source_last_update_idx', 'shipments_order_idx'],
    // Only this source's orders of the window are read (the incomplete ones dropped), and each one's shipments by order
    // id (another source's dropped: none in real data, where a shipment is its order's source's; the seed spreads one
    // order's shipments over sources, so here most orders are incomplete too).
    maxRowsDropped: async (c) => {
      const [start, end] = reconcileSpan(c);
      const [r] = await c.plain`
        select (select count(*) from orders o
                 where o.source_id = ${sourceId} and o.last_update_at >= ${start} and o.last_update_at < ${end})::int
             + (select count(*) from orders o join shipments s on s.order_id = o.id
                 where o.source_id = ${sourceId} and o.last_update_at >= ${start} and o.last_update_at < ${end}
                   and s.source_id <> o.source_id)::int as n`;
      return r.n;
    },
  },
  {
    name: 'prune-processed-batch',
    fn: 'pruneInbox (src/inbox/prune.ts): the bound (lastInboxIdBefore) and one batch of processed rows',
    run: (sql, c) =>
      inRollback(sql, (tx) => {
        let batches = 0;
        return pruneInbox(tx, {
          processedDays: 29,
          deadDays: 90,
          quarantineDays: 7,
          batchSize: 500,
          now: c.now,
          onBatch: (r) => {
            batches = r.batches;
          },
          shouldStop: () => batches >= 1,
        });
      }),
    pick: (q) => q.includes('inbox_events'),
    // The watermark and the oldest pending row: a read of the one-row inbox_prune_state and a pending-index probe.
    indexes: ['inbox_events_pkey', 'inbox_events_pending_idx'],
    // The batch starts at the stored watermark (where the seeded last run ended): it skips only the dead and ignored
    // rows received since, not every one kept before the cutoff.
    maxRowsDropped: (c) => rowsKeptAfterWatermark(c, 29),
  },
  {
    name: 'prune-next-batch',
    fn: 'deleteProcessedBatch (src/inbox/prune.ts): a batch after the first one of a run',
    run: async (sql, c) => {
      const before = new Date(c.now.getTime() - 29 * DAY);
      const maxId = (await lastInboxIdBefore(c.plain, before)) ?? 0;
      const first = await inRollback(c.plain, (tx) => deleteProcessedBatch(tx, { before, limit: 500, afterId: 0, maxId }));
      return inRollback(sql, (tx) => deleteProcessedBatch(tx, { before, limit: 500, afterId: first.lastId, maxId }));
    },
    indexes: ['inbox_events_pkey'],
    // It starts after the last batch: only the dead and ignored rows interleaved with this batch's are skipped.
    maxRowsDropped: 25,
  },
  {
    name: 'prune-run-end',
    fn: 'pruneInbox (src/inbox/prune.ts): a run with nothing left to delete (every step\'s closing batch)',
    // The hourly run's retention (INBOX_RETENTION_DAYS), an hour after the seeded last run: its walk reads the rows
    // received between the two runs' cutoffs, then it stores its watermark.
    run: (sql, c) =>
      inRollback(sql, (tx) => pruneInbox(tx, { processedDays: 30, deadDays: 95, quarantineDays: 35, batchSize: 500, now: c.now })),
    pick: (q) => q.includes('inbox_events') || q.includes('inbox_prune_state') || q.includes('quarantine'),
    indexes: [
      'inbox_events_pkey',
      'inbox_events_pending_idx',
      'inbox_events_finished_idx',
      'quarantine_received_idx',
      'quarantine_counts_bucket_idx',
    ],
    // Not the dead and ignored rows kept before the cutoff (a walk from the first id read them all, every run): only
    // those after the watermark.
    maxRowsDropped: (c) => rowsKeptAfterWatermark(c, 30),
  },
  {
    name: 'read-status',
    fn: 'readStatus (src/ops/status.ts): ops status',
    run: (sql) => readStatus(sql, { staleAfterMs: 60_000 }),
    indexes: ['inbox_events_pending_idx', 'quarantine_counts_bucket_idx'],
  },
  {
    name: 'refresh-gauges',
    fn: 'startGaugeRefresher (src/ops/metrics-gauges.ts): the database read behind /metrics',
    run: async (sql, c) => {
      const gauges = startGaugeRefresher({ sql, config: c.config, pools: {} });
      await gauges.refresh();
      await gauges.stop();
    },
    indexes: ['inbox_events_pending_idx', 'quarantine_counts_bucket_idx'],
  },
  {
    name: 'ops-explain-shipment',
    fn: 'explainEntity (src/ops/explain.ts): ops explain shipment <id>',
    run: (sql, c) => explainEntity(sql, { kind: 'shipment', id: String(c.shipments - 10) }),
    indexes: ['shipments_pkey', 'inbox_events_entity_keys_idx', 'inbox_events_pending_idx', 'inbox_events_pkey'],
    // The pending rows not yet drained are read and those whose body does not name the id dropped: the backlog, not
    // the inbox.
    maxRowsDropped: async (c) => {
      const [r] = await c.plain`select count(*)::int as n from inbox_events where status = 'pending'`;
      return r.n;
    },
  },
  {
    name: 'ops-page',
    fn: 'readOpsPage (src/ops/page/queries.ts): the ops page overview',
    run: async (sql, c) => {
      // The sampler runs every minute: the page reads live only the inbox ids above its last sample.
      await sampleOpsMetrics(c.plain, { now: c.now, retentionDays: 7 });
      return readOpsPage(sql, { now: c.now, staleAfterMs: 60_000 });
    },
    indexes: ['inbox_events_pending_idx', 'inbox_events_pkey', 'inbox_events_dead_reason_idx'],
    // The dead-letter counters are grouped by reason (a sort of their rows: one per source, topic, reason and slot,
    // however many dead letters there are); each listed group's rows are then index probes.
    maxSortRows: 200,
  },
  {
    name: 'ops-page-dead-letter',
    fn: 'readDeadLetter (src/ops/page/queries.ts): one dead letter',
    run: async (sql, c) => {
      const [dead] = await c.plain<{ id: string }[]>`select id from inbox_events where status = 'dead' order by id desc limit 1`;
      return readDeadLetter(sql, Number(dead.id));
    },
    indexes: ['inbox_events_pkey'],
  },
];

/** The 30 closed days ending 10 days before the seed's clock. */
function reconcileSpan(c: PlanContext): [Date, Date] {
  const end = Math.floor(c.now.getTime() / DAY) * DAY - 10 * DAY;
  return [new Date(end - 30 * DAY), new Date(end)];
}

/**
 * Inbox rows a prune keeps (dead and ignored, pending) between the stored watermark and the newest id received before
 * the processed cutoff: what a walk from the watermark reads and drops.
 */
async function rowsKeptAfterWatermark(c: PlanContext, days: number): Promise<number> {
  const cutoff = new Date(c.now.getTime() - days * DAY);
  const bound = (await lastInboxIdBefore(c.plain, cutoff)) ?? 0;
  const [r] = await c.plain`
    select count(*)::int as n from inbox_events
     where id > (select processed_after_id from inbox_prune_state) and id <= ${bound} and status <> 'processed'`;
  return r.n;
}
