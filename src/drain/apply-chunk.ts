import { attributePendingTransactions, lockAttributionKeys, referenceKey } from '../apply/attribution.js';
import { type CollapsedChunk, collapseChunk, entityKey } from '../apply/collapse.js';
import { type Normalised, normaliseEvent } from '../apply/normalise.js';
import {
  insertTimelineEntries,
  upsertOrdersAndShipments,
  upsertReturns,
  upsertTransactions,
  type WrittenOrderOrShipment,
  type WrittenReturn,
  type WrittenTransaction,
} from '../apply/upserts.js';
import type { Queryable } from '../db/client.js';
import { pipeline } from '../db/pipeline.js';
import type { InboxRow } from '../inbox/claim.js';
import { type InboxMark, markInboxEvents } from '../inbox/mark.js';
import { addPollCatches, type PollCatch } from '../poll/catches.js';
import { streamOfPollTopic } from '../poll/streams.js';

/**
 * The one owner of a chunk's statements and their order, inside the caller's transaction (which claimed `rows`):
 *
 *   pipeline 1: mark → orders+shipments → timeline → returns → transactions
 *   pipeline 2: attribution locks → attribution catch-up → poll catches (only when there are some)
 *
 * Six or seven statements whatever the number of rows (the caller adds begin, claim and commit). Table order is fixed
 * and each statement locks its rows in key order, so two chunks over the same entities wait for each other but never
 * deadlock. The mark goes first: from the first upsert on, a concurrent chunk sharing an entity waits for our commit,
 * so work that locks nothing shared is done before it. Charges read the shipments and returns just written, and the
 * catch-up needs the upserts' results in JavaScript (which keys to lock), hence two pipelines.
 * Throws what PostgreSQL throws; the caller decides between retry (transient) and bisection (data).
 */

export interface AppliedChunk {
  /** One per claimed row: processed, dead (with its reason) or ignored (unknown topic); known before any write. */
  marks: InboxMark[];
  /** Poll events that brought something newer than the database held, and that no webhook of the chunk carried. */
  catches: PollCatch[];
  /** Pending charges this chunk attributed through a shipment or return it brought. */
  attributed: number;
  /** Milliseconds by phase (metrics): normalise (JS: normalise and collapse), upsert (pipeline 1), attribution (2). */
  timings: { normalise: number; upsert: number; attribution: number };
}

interface Prepared {
  normalised: { row: InboxRow; n: Normalised }[];
  chunk: CollapsedChunk;
  marks: InboxMark[];
}

/** Normalises each claimed row by topic and collapses each entity to its newest version: JavaScript only. */
function prepare(rows: readonly InboxRow[]): Prepared {
  const normalised = rows.map((row) => ({ row, n: normaliseEvent(row) }));
  const chunk = collapseChunk(normalised.flatMap(({ n }) => (n.outcome === 'apply' ? [n.entities] : [])));
  const marks = normalised.map(({ row, n }): InboxMark =>
    n.outcome === 'apply'
      ? { id: row.id, status: 'processed', error: null }
      : { id: row.id, status: n.outcome, error: n.reason },
  );
  return { normalised, chunk, marks };
}

export async function applyChunk(sql: Queryable, rows: readonly InboxRow[]): Promise<AppliedChunk> {
  const t0 = performance.now();
  const { normalised, chunk, marks } = prepare(rows);
  const t1 = performance.now();
  const written = await pipeline({
    mark: markInboxEvents(sql, marks),
    ordersAndShipments: upsertOrdersAndShipments(sql, chunk.orders, chunk.shipments),
    timeline: insertTimelineEntries(sql, chunk.timeline),
    returns: upsertReturns(sql, chunk.returns),
    transactions: upsertTransactions(sql, chunk.transactions),
  });
  const t2 = performance.now();
  const orders = written.ordersAndShipments.filter((w) => w.kind === 'order');
  const shipments = written.ordersAndShipments.filter((w) => w.kind === 'shipment');

  const txById = new Map(chunk.transactions.map((t) => [t.transactionId, t]));
  const pending = written.transactions.filter((t) => t.attribution_status === 'pending').map((t) => txById.get(t.id)!);
  const keys = [
    ...shipments.filter((s) => s.attributable).map((s) => referenceKey('shipment', s.id)),
    ...written.returns.filter((r) => r.attributable).map((r) => referenceKey('return', r.id)),
    ...pending.map((t) => referenceKey(t.refKind!, t.refKey!)),
  ];
  const catches = pollCatches(normalised, chunk, { orders, shipments, returns: written.returns, transactions: written.transactions });
  // The catch-up is a statement of its own (a fresh snapshot), which PostgreSQL runs once the locks are held.
  const after = await pipeline({
    locks: lockAttributionKeys(sql, keys),
    attributed: attributePendingTransactions(sql, {
      shipmentIds: chunk.shipments.map((s) => s.id),
      returnIds: chunk.returns.map((r) => r.id),
      transactionIds: pending.map((t) => t.transactionId),
    }),
    ...(catches.length > 0 ? { catches: addPollCatches(sql, catches) } : {}),
  });
  const timings = { normalise: t1 - t0, upsert: t2 - t1, attribution: performance.now() - t2 };
  return { marks, catches, attributed: after.attributed.length, timings };
}

/**
 * Poll catches: a written version, strictly newer than the database held, that came by poll and that no webhook of
 * this chunk carried as new; and a delivery that only a poll of this chunk brought. Counted per source and stream.
 */
function pollCatches(
  normalised: Prepared['normalised'],
  chunk: CollapsedChunk,
  written: {
    orders: WrittenOrderOrShipment[];
    shipments: WrittenOrderOrShipment[];
    returns: WrittenReturn[];
    transactions: WrittenTransaction[];
  },
): PollCatch[] {
  const caught = new Set<number>();
  const consider = (key: string, v: { via: string; eventUs: number; inboxId: number } | null | undefined) => {
    if (v && v.via === 'poll' && v.eventUs > (chunk.pushedUs.get(key) ?? -Infinity)) caught.add(v.inboxId);
  };
  const orderById = new Map(chunk.orders.map((o) => [o.id, o]));
  for (const o of written.orders) if (o.newer) consider(entityKey('order', o.id), orderById.get(Number(o.id)));
  const shipmentById = new Map(chunk.shipments.map((s) => [s.id, s]));
  for (const s of written.shipments) {
    const input = shipmentById.get(Number(s.id))!;
    if (s.newer) consider(entityKey('shipment', s.id), input.version);
    if (s.delivered && input.deliveredByPollOnly !== null) caught.add(input.deliveredByPollOnly);
  }
  const returnById = new Map(chunk.returns.map((r) => [r.id, r]));
  for (const r of written.returns) if (r.newer) consider(entityKey('return', r.id), returnById.get(Number(r.id)));
  const txById = new Map(chunk.transactions.map((t) => [t.transactionId, t]));
  for (const t of written.transactions) if (t.newer) consider(entityKey('transaction', t.id), txById.get(t.id));

  const byKey = new Map<string, PollCatch>();
  for (const { row } of normalised) {
    if (!caught.has(row.id)) continue;
    const stream = streamOfPollTopic(row.topic) ?? row.topic ?? 'unknown';
    const k = `${row.sourceId}\u0000${stream}`;
    const c = byKey.get(k) ?? { sourceId: row.sourceId, stream, count: 0 };
    c.count++;
    byKey.set(k, c);
  }
  return [...byKey.values()];
}
