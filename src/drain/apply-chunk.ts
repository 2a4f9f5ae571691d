import { PollTopics } from '../provider/shapes.js';
import { addPollCatches, type InboxMark, type PollCatch } from '../inbox/mark.js';
import { attributePendingTransactions, lockAttributionKeys, referenceKey } from '../apply/attribution.js';
import { collapseChunk } from '../apply/collapse.js';
import { type InboxRow, normaliseEvent, type Normalised } from '../apply/normalise.js';
import {
  insertTimelineEntries,
  type PendingStatement,
  pipeline,
  type Queryable,
  upsertOrdersAndShipments,
  upsertReturns,
  upsertTransactions,
} from '../apply/upserts.js';

/** The poll cursor stream each poll topic belongs to (poll_cursors.stream). */
export const PollStreams: Record<string, string> = {
  [PollTopics.order]: 'orders',
  [PollTopics.transaction]: 'transactions',
  [PollTopics.timeline]: 'timelines',
  [PollTopics.return]: 'returns',
};

export interface PreparedEvents {
  normalised: { row: InboxRow; n: Normalised }[];
  chunk: ReturnType<typeof collapseChunk>;
  /** One per input row: processed, dead (with its reason) or ignored (unknown topic); known before any write. */
  marks: InboxMark[];
}

export interface AppliedEvents {
  /** Poll events that brought something newer than the database held, and that no webhook of the chunk carried. */
  catches: PollCatch[];
  /** Pending charges this chunk attributed through a shipment or return it brought. */
  attributed: number;
}

/** Normalises each claimed row by topic and collapses each entity to its newest version: JavaScript only. */
export function prepareEvents(rows: readonly InboxRow[]): PreparedEvents {
  const normalised = rows.map((row) => ({ row, n: normaliseEvent(row) }));
  const chunk = collapseChunk(normalised.flatMap(({ n }) => (n.outcome === 'apply' ? [n.entities] : [])));
  const marks = normalised.map(({ row, n }): InboxMark =>
    n.outcome === 'apply'
      ? { id: row.id, status: 'processed', error: null }
      : { id: row.id, status: n.outcome, error: n.reason },
  );
  return { normalised, chunk, marks };
}

/**
 * Applies prepared rows inside the caller's transaction: one statement per table, the attribution lock and catch-up,
 * and the poll catches if any. Six or seven statements whatever the number of rows (the caller adds begin, claim,
 * mark, commit), in two pipelines: the mark (`first`, the caller's) and the upserts, then the lock, the catch-up and
 * the catches, which need the upserts' results.
 * Throws what PostgreSQL throws; the caller decides between retry (transient) and bisection (data).
 */
export async function applyEvents(
  sql: Queryable,
  { normalised, chunk }: PreparedEvents,
  first: PendingStatement,
): Promise<AppliedEvents> {
  // Table order is fixed (orders → shipments → timeline → returns → transactions) and each statement locks its rows in
  // key order, so two chunks over the same entities wait for each other but never deadlock. Charges read the shipments
  // and returns just written: the order matters, pipeline keeps it.
  const [, ordersAndShipments, , returns, transactions] = await pipeline(
    first,
    upsertOrdersAndShipments(sql, chunk.orders, chunk.shipments),
    insertTimelineEntries(sql, chunk.timeline),
    upsertReturns(sql, chunk.returns),
    upsertTransactions(sql, chunk.transactions),
  );
  const orders = ordersAndShipments.filter((w) => w.kind === 'order');
  const shipments = ordersAndShipments.filter((w) => w.kind === 'shipment');

  const txById = new Map(chunk.transactions.map((t) => [t.transactionId, t]));
  const pending = transactions.filter((t) => t.attribution_status === 'pending').map((t) => txById.get(t.id)!);
  const keys = [
    ...shipments.filter((s) => s.attributable).map((s) => referenceKey('shipment', s.id)),
    ...returns.filter((r) => r.attributable).map((r) => referenceKey('return', r.id)),
    ...pending.map((t) => referenceKey(t.refKind!, t.refKey!)),
  ];
  // Poll catches: a written version, strictly newer than the database held, that came by poll and that no webhook
  // of this chunk carried as new.
  const caught = new Set<number>();
  const consider = (key: string, v: { via: string; eventUs: number; inboxId: number } | null | undefined) => {
    if (v && v.via === 'poll' && v.eventUs > (chunk.pushedUs.get(key) ?? -Infinity)) caught.add(v.inboxId);
  };
  const orderById = new Map(chunk.orders.map((o) => [o.id, o]));
  for (const o of orders) if (o.newer) consider(`o${o.id}`, orderById.get(Number(o.id)));
  const shipmentById = new Map(chunk.shipments.map((s) => [s.id, s]));
  for (const s of shipments) {
    const input = shipmentById.get(Number(s.id))!;
    if (s.newer) consider(`s${s.id}`, input.version);
    if (s.delivered && input.deliveredByPollOnly !== null) caught.add(input.deliveredByPollOnly);
  }
  const returnById = new Map(chunk.returns.map((r) => [r.id, r]));
  for (const r of returns) if (r.newer) consider(`r${r.id}`, returnById.get(Number(r.id)));
  for (const t of transactions) if (t.newer) consider(`t${t.id}`, txById.get(t.id));

  const byKey = new Map<string, PollCatch>();
  for (const { row } of normalised) {
    if (!caught.has(row.id)) continue;
    const stream = PollStreams[row.topic ?? ''] ?? row.topic ?? 'unknown';
    const k = `${row.sourceId}\u0000${stream}`;
    const c = byKey.get(k) ?? { sourceId: row.sourceId, stream, count: 0 };
    c.count++;
    byKey.set(k, c);
  }
  const catches = [...byKey.values()];
  // The catch-up is a statement of its own (a fresh snapshot), which PostgreSQL runs once the locks are held; the
  // poll catches, when there are any, go in the same pipeline.
  const [, attributed] = await pipeline(
    lockAttributionKeys(sql, keys),
    attributePendingTransactions(sql, {
      shipmentIds: chunk.shipments.map((s) => s.id),
      returnIds: chunk.returns.map((r) => r.id),
      transactionIds: pending.map((t) => t.transactionId),
    }),
    ...(catches.length > 0 ? [addPollCatches(sql, catches)] : []),
  );

  return { catches, attributed: attributed.length };
}
