import type { ResolveRequest } from '../poll/resolve-queue.js';
import type { Drift, Entities, OrderRow, ReturnRow, ShipmentRow, TimelineRow, TransactionRow, Version } from './normalise.js';

/**
 * A chunk's entities reduced to one row per key (PostgreSQL refuses to touch a row twice in one statement), each the
 * newest version the chunk holds, sorted by key so concurrent chunks lock rows in the same order. Two facts are not
 * the newest version's alone, as in the upserts: an order's shipment count is the most any of its versions listed, a
 * shipment's order the one any version named (when the newest names none).
 */

/** A shipment as the chunk sees it: its newest version (if any event carried one) and its earliest delivery. */
export interface ShipmentInput {
  id: number;
  sourceId: string;
  version: ShipmentRow | null;
  deliveredUs: number | null;
  /** The poll event that brought the delivery, when no other event of the chunk did (a poll catch candidate). */
  deliveredByPollOnly: number | null;
}

export interface CollapsedChunk {
  orders: OrderRow[];
  shipments: ShipmentInput[];
  timeline: TimelineRow[];
  returns: ReturnRow[];
  transactions: TransactionRow[];
  /** Per entity key, the newest time a non-poll event of this chunk carried: a poll is a catch only above it. */
  pushedUs: Map<string, number>;
  /** Resources to fetch by id (one per source, kind and id; every inbox row that asked, kept). */
  resolves: ResolveRequest[];
  /** Drift counted per topic, field and problem. */
  drift: (Drift & { count: number })[];
}

/** The key of an entity within a chunk (orders, shipments, returns, transactions): one spelling for every map of it. */
export type EntityKind = 'order' | 'shipment' | 'return' | 'transaction';
export const entityKey = (kind: EntityKind, id: number | string): string => `${kind}:${id}`;

/** True when `a` is a newer version than `b` (the same order the SQL guards use). */
export const isNewer = (a: Version, b: Version): boolean =>
  a.eventUs > b.eventUs || (a.eventUs === b.eventUs && a.inboxId > b.inboxId);

/**
 * A return's newer version: later in the life cycle first (a return never moves back: OA gives it no update time),
 * then newer (the same order the SQL guard uses).
 */
export const isNewerReturn = (a: ReturnRow, b: ReturnRow): boolean =>
  a.statusRank > b.statusRank || (a.statusRank === b.statusRank && isNewer(a, b));

export function collapseChunk(all: Entities[]): CollapsedChunk {
  const orders = new Map<number, OrderRow>();
  const versions = new Map<number, ShipmentRow>();
  const shipments = new Map<number, ShipmentInput>();
  const timeline = new Map<string, TimelineRow>();
  const returns = new Map<number, ReturnRow>();
  const transactions = new Map<string, TransactionRow>();
  const pushedUs = new Map<string, number>();
  const resolves: ResolveRequest[] = [];
  const drift = new Map<string, Drift & { count: number }>();
  const shipmentCounts = new Map<number, number>();
  const orderIds = new Map<number, number>();

  const push = (key: string, v: Version) => {
    if (v.via !== 'poll' && (pushedUs.get(key) ?? -Infinity) < v.eventUs) pushedUs.set(key, v.eventUs);
  };
  const keep = <K, V extends Version>(map: Map<K, V>, key: K, row: V) => {
    const held = map.get(key);
    if (!held || isNewer(row, held)) map.set(key, row);
  };
  const shipment = (id: number, sourceId: string): ShipmentInput => {
    let s = shipments.get(id);
    if (!s) shipments.set(id, (s = { id, sourceId, version: null, deliveredUs: null, deliveredByPollOnly: null }));
    return s;
  };
  const deliver = (s: ShipmentInput, us: number, inboxId: number, via: string) => {
    if (s.deliveredUs === null || us < s.deliveredUs) s.deliveredUs = us;
    if (via !== 'poll') s.deliveredByPollOnly = -1;
    else if (s.deliveredByPollOnly === null) s.deliveredByPollOnly = inboxId;
  };

  for (const e of all) {
    for (const o of e.orders) {
      keep(orders, o.id, o);
      push(entityKey('order', o.id), o);
      if (o.shipmentCount !== null && o.shipmentCount > (shipmentCounts.get(o.id) ?? -1)) shipmentCounts.set(o.id, o.shipmentCount);
    }
    for (const s of e.shipments) {
      keep(versions, s.id, s);
      push(entityKey('shipment', s.id), s);
      if (s.orderId !== null) orderIds.set(s.id, s.orderId);
      const input = shipment(s.id, s.sourceId);
      if (s.deliveredUs !== null) deliver(input, s.deliveredUs, s.inboxId, s.via);
    }
    for (const d of e.deliveries) deliver(shipment(d.shipmentId, d.sourceId), d.deliveredUs, d.inboxId, d.via);
    for (const t of e.timeline) timeline.set(`${t.shipmentId}:${t.logTypeId}:${t.timestamp}:${t.sourceId}`, t);
    for (const r of e.returns) {
      const held = returns.get(r.id);
      if (!held || isNewerReturn(r, held)) returns.set(r.id, r);
      push(entityKey('return', r.id), r);
    }
    for (const q of e.resolves) resolves.push(q);
    for (const d of e.drift) {
      const k = `${d.topic}\u0000${d.field}\u0000${d.problem}`;
      const held = drift.get(k);
      if (held) held.count++;
      else drift.set(k, { ...d, count: 1 });
    }
    for (const t of e.transactions) {
      keep(transactions, t.transactionId, t);
      push(entityKey('transaction', t.transactionId), t);
    }
  }
  for (const [id, v] of versions) {
    const s = shipments.get(id)!;
    if (v.orderId === null) v.orderId = orderIds.get(id) ?? null;
    s.version = v;
    s.sourceId = v.sourceId;
  }
  for (const [id, n] of shipmentCounts) {
    const o = orders.get(id)!;
    o.shipmentCount = n;
  }
  for (const s of shipments.values()) if (s.deliveredByPollOnly === -1) s.deliveredByPollOnly = null;

  const byNumber = (a: { id: number }, b: { id: number }) => a.id - b.id;
  return {
    orders: [...orders.values()].sort(byNumber),
    shipments: [...shipments.values()].sort(byNumber),
    timeline: [...timeline.values()].sort(
      (a, b) => a.shipmentId - b.shipmentId || a.logTypeId - b.logTypeId || (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0),
    ),
    returns: [...returns.values()].sort(byNumber),
    transactions: [...transactions.values()].sort((a, b) =>
      a.transactionId < b.transactionId ? -1 : a.transactionId > b.transactionId ? 1 : 0,
    ),
    pushedUs,
    resolves,
    drift: [...drift.values()],
  };
}
