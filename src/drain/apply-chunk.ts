import { attributePendingTransactions, inventoryKey, lockAttributionKeys, referenceKey } from '../apply/attribution.js';
import { type CollapsedChunk, collapseChunk, entityKey } from '../apply/collapse.js';
import { type Entities, type Normalised, normaliseEvent } from '../apply/normalise.js';
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
import { type InboxMark, markInboxEvents, remarkInboxEvents } from '../inbox/mark.js';
import { DEFAULT_WEBHOOK_TOLERANCE_MS } from '../config.js';
import { parseMicros } from '../time.js';
import { addPollCatches, type PollCatch } from '../poll/catches.js';
import { streamOfPollTopic } from '../poll/streams.js';
import { queueResolves } from '../poll/resolve-queue.js';
import { recordPayloadDrift } from '../apply/drift.js';
import { entityKeysOf, inboxKeysOf } from '../apply/entity-keys.js';

/**
 * The one owner of a chunk's statements and their order, inside the caller's transaction (which claimed `rows`):
 *
 *   pipeline 1: commit mode → mark → orders+shipments → timeline → returns → transactions
 *   pipeline 2: attribution locks → attribution catch-up → poll catches, resolve requests, payload drift, re-mark of
 *               the rows refused for ownership as dead (each only when there are some)
 *
 * Seven to nine statements whatever the number of rows (the caller adds begin, claim and commit). Table order is fixed
 * and each statement locks its rows in key order, so two chunks over the same entities wait for each other but never
 * deadlock. The mark goes first: from the first upsert on, a concurrent chunk sharing an entity waits for our commit,
 * so work that locks nothing shared is done before it. Charges read the shipments and returns just written, and the
 * catch-up needs the upserts' results in JavaScript (which keys to lock), hence two pipelines.
 * Throws what PostgreSQL throws; the caller decides between retry (transient) and bisection (data).
 *
 * Ownership (docs/tenancy.md): the upserts refuse a version of an entity another source owns and report it; the
 * rows that carried it are re-marked dead with the reason, counted (`refused`). Within one chunk, an entity that
 * rows of several sources touch is applied for the source of its first row only; the others' rows stay pending
 * (`deferred`: no mark) and the next chunk decides them against the stored owner: the chunk's first row is never
 * deferred, so each chunk settles at least one row.
 *
 * No version from the future: an event time later than its row's received_at plus `futureToleranceMs` is clamped
 * there before anything compares versions, so no event can pin a row.
 */

export interface ApplyOptions {
  /** How far an event time may lead its arrival (WEBHOOK_TOLERANCE_MS). */
  futureToleranceMs?: number;
  /**
   * Awaited before each stretch of JavaScript (normalising, building the second pipeline): the bulk lane gives way to
   * an express chunk in flight in this process (drain-inbox.ts), which must bound the wait (it holds this chunk's locks).
   */
  giveWay?: () => Promise<unknown>;
}

export interface AppliedChunk {
  /**
   * One per claimed row except the deferred ones: processed, dead (with its reason) or ignored (unknown topic), as
   * known before any write, then the refused rows turned dead.
   */
  marks: InboxMark[];
  /** Poll events that brought something newer than the database held, and that no webhook of the chunk carried. */
  catches: PollCatch[];
  /** Pending charges this chunk attributed through a shipment or return it brought. */
  attributed: number;
  /** Milliseconds by phase (metrics): normalise (JS: normalise and collapse), upsert (pipeline 1), attribution (2). */
  timings: { normalise: number; upsert: number; attribution: number };
  /** Rows now dead because an entity they carry belongs to another source. */
  refused: number;
  /** Rows left pending (no mark): another source's row of this chunk touched one of their entities first. */
  deferred: number;
  /** Versions whose event time was clamped to received_at + tolerance. */
  clamped: number;
}

interface Prepared {
  /** The rows this chunk applies or marks (deferred ones excluded). */
  normalised: { row: InboxRow; n: Normalised; keys: string[] }[];
  chunk: CollapsedChunk;
  marks: InboxMark[];
  deferred: number;
  clamped: number;
}

/** Clamps every version time of `e` to `limitUs`; returns how many it changed. */
function clampVersions(e: Entities, limitUs: number): number {
  let n = 0;
  for (const list of [e.orders, e.shipments, e.returns, e.transactions] as { eventUs: number }[][]) {
    for (const v of list) {
      if (v.eventUs > limitUs) {
        v.eventUs = limitUs;
        n++;
      }
    }
  }
  return n;
}

/**
 * Normalises each claimed row by topic, clamps future versions, sets aside the rows that contest an entity with an
 * earlier row of another source, and collapses each entity to its newest version: JavaScript only.
 */
function prepare(rows: readonly InboxRow[], futureToleranceMs: number): Prepared {
  let clamped = 0;
  const all = rows.map((row) => {
    const n = normaliseEvent(row);
    if (n.outcome !== 'apply') return { row, n, keys: [] as string[] };
    const receivedUs = parseMicros(row.receivedAt);
    if (receivedUs !== undefined) clamped += clampVersions(n.entities, receivedUs + futureToleranceMs * 1000);
    return { row, n, keys: entityKeysOf(n.entities) };
  });
  // Rows come in id order: the first source to touch a key in this chunk is its candidate owner here.
  const firstSource = new Map<string, string>();
  for (const { row, keys } of all) for (const k of keys) if (!firstSource.has(k)) firstSource.set(k, row.sourceId);
  const normalised = all.filter(({ row, keys }) => keys.every((k) => firstSource.get(k) === row.sourceId));
  const chunk = collapseChunk(normalised.flatMap(({ n }) => (n.outcome === 'apply' ? [n.entities] : [])));
  // Each mark stores the row's keys for `ops explain` (src/apply/entity-keys.ts).
  const marks = normalised.map(({ row, n }): InboxMark => ({
    id: row.id,
    ...(n.outcome === 'apply' ? { status: 'processed', error: null } : { status: n.outcome, error: n.reason }),
    keys: inboxKeysOf(row.body, n),
  }));
  return { normalised, chunk, marks, deferred: all.length - normalised.length, clamped };
}

export async function applyChunk(sql: Queryable, rows: readonly InboxRow[], opts: ApplyOptions = {}): Promise<AppliedChunk> {
  await opts.giveWay?.();
  const t0 = performance.now();
  const { normalised, chunk, marks, deferred, clamped } = prepare(rows, opts.futureToleranceMs ?? DEFAULT_WEBHOOK_TOLERANCE_MS);
  const t1 = performance.now();
  const written = await pipeline({
    // The commit does not wait for the disk: what a chunk writes is derived from inbox rows the intake committed
    // durably, and a chunk lost in a crash leaves them pending, to be applied again (docs/drain.md "Durability").
    asyncCommit: sql`select set_config('synchronous_commit', 'off', true)`,
    mark: markInboxEvents(sql, marks),
    ordersAndShipments: upsertOrdersAndShipments(sql, chunk.orders, chunk.shipments),
    timeline: insertTimelineEntries(sql, chunk.timeline),
    returns: upsertReturns(sql, chunk.returns),
    transactions: upsertTransactions(sql, chunk.transactions),
  });
  const t2 = performance.now();
  await opts.giveWay?.();
  // Refusals: a written row whose owner is not the incoming version's source (each key has one source per chunk).
  const refusedKeys = new Set<string>();
  const sourceOf = {
    order: new Map(chunk.orders.map((o) => [String(o.id), o.sourceId])),
    shipment: new Map(chunk.shipments.map((x) => [String(x.id), x.sourceId])),
    return: new Map(chunk.returns.map((r) => [String(r.id), r.sourceId])),
    transaction: new Map(chunk.transactions.map((t) => [t.transactionId, t.sourceId])),
  };
  const owned = <W extends { id: string; source_id: string }>(kind: keyof typeof sourceOf, list: W[]): W[] =>
    list.filter((w) => {
      if (w.source_id === sourceOf[kind].get(w.id)) return true;
      refusedKeys.add(entityKey(kind, w.id));
      return false;
    });
  const orders = owned('order', written.ordersAndShipments.filter((w) => w.kind === 'order'));
  const shipments = owned('shipment', written.ordersAndShipments.filter((w) => w.kind === 'shipment'));
  const returns = owned('return', written.returns);
  const transactions = owned('transaction', written.transactions);
  for (const t of written.timeline) refusedKeys.add(entityKey('shipment', t.shipment_id));
  const refusals: InboxMark[] = [];
  if (refusedKeys.size > 0) {
    for (const { row, keys } of normalised) {
      const key = keys.find((k) => refusedKeys.has(k));
      if (key === undefined) continue;
      refusals.push({ id: row.id, status: 'dead', error: `refused: ${key} belongs to another source` });
    }
  }

  const txById = new Map(chunk.transactions.map((t) => [t.transactionId, t]));
  // Charges to re-check: those written pending or (storage) without their item, and those the upsert left as they were
  // (an older or equal version). The latter's rows are locked too (ON CONFLICT DO UPDATE locks the row it does not
  // update), so a chunk landing their shipment meanwhile skips them in its catch-up (SKIP LOCKED) and counts on this
  // chunk to re-check them.
  const writtenIds = new Set(written.transactions.map((t) => t.id));
  const awaitsReference = (t: WrittenTransaction) =>
    t.attribution_status === 'pending' || (t.attribution_status === 'unattributable' && txById.get(t.id)!.refKind === 'fc');
  const pending = [
    ...transactions.filter(awaitsReference).map((t) => txById.get(t.id)!),
    ...chunk.transactions.filter(
      (t) => !writtenIds.has(t.transactionId) && (t.refKind === 'shipment' || t.refKind === 'return' || t.refKind === 'fc') && t.refKey !== null,
    ),
  ];
  const keys = [
    ...shipments.filter((s) => s.attributable).map((s) => referenceKey('shipment', s.id)),
    ...returns.filter((r) => r.attributable).map((r) => referenceKey('return', r.id)),
    ...pending.map((t) => (t.refKind === 'fc' ? inventoryKey(t.sourceId) : referenceKey(t.refKind!, t.refKey!))),
  ];
  const refusedIds = new Set(refusals.map((m) => m.id));
  const catches = pollCatches(
    normalised.filter(({ row }) => !refusedIds.has(row.id)),
    chunk,
    { orders, shipments, returns, transactions },
  );
  // The catch-up is a statement of its own (a fresh snapshot), which PostgreSQL runs once the locks are held.
  const after = await pipeline({
    locks: lockAttributionKeys(sql, keys),
    attributed: attributePendingTransactions(sql, {
      shipmentIds: chunk.shipments.map((s) => s.id),
      returnIds: chunk.returns.map((r) => r.id),
      transactionIds: pending.map((t) => t.transactionId),
    }),
    ...(catches.length > 0 ? { catches: addPollCatches(sql, catches) } : {}),
    ...(refusals.length > 0 ? { refused: remarkInboxEvents(sql, refusals) } : {}),
    // Resources to fetch by id (order-centric or incomplete bodies) and payload drift: only when there are some.
    ...(chunk.resolves.length > 0 ? { resolves: queueResolves(sql, chunk.resolves) } : {}),
    ...(chunk.drift.length > 0 ? { drift: recordPayloadDrift(sql, chunk.drift) } : {}),
  });
  const byId = new Map(refusals.map((m) => [m.id, m]));
  const finalMarks = byId.size === 0 ? marks : marks.map((m) => byId.get(m.id) ?? m);
  const timings = { normalise: t1 - t0, upsert: t2 - t1, attribution: performance.now() - t2 };
  return { marks: finalMarks, catches, attributed: after.attributed.length, refused: refusals.length, deferred, clamped, timings };
}

/**
 * Poll catches: a written version, strictly newer than the database held, that came by poll and that no webhook of
 * this chunk carried as new (a polled order only when its own version is later than its shipments'); and a delivery
 * that only a poll of this chunk brought. Counted per source and stream, with each change's version time.
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
  // Inbox id of each caught poll event → the version time (µs) of the change it brought (the newest, if several).
  const caught = new Map<number, number>();
  const catchAt = (inboxId: number, us: number) => {
    if ((caught.get(inboxId) ?? -Infinity) < us) caught.set(inboxId, us);
  };
  const consider = (key: string, v: { via: string; eventUs: number; inboxId: number } | null | undefined) => {
    if (v && v.via === 'poll' && v.eventUs > (chunk.pushedUs.get(key) ?? -Infinity)) catchAt(v.inboxId, v.eventUs);
  };
  // A polled order carries its shipments, and its version (last update) moves with theirs: an order version no later
  // than its newest shipment's is a shipment change, a catch only if that shipment is one (counted below), not when a
  // webhook already brought the shipment.
  const newestShipmentUs = new Map<number, number>();
  for (const { row, n } of normalised) {
    if (row.via !== 'poll' || n.outcome !== 'apply') continue;
    for (const sh of n.entities.shipments) newestShipmentUs.set(row.id, Math.max(newestShipmentUs.get(row.id) ?? -Infinity, sh.eventUs));
  }
  const orderById = new Map(chunk.orders.map((o) => [o.id, o]));
  for (const o of written.orders) {
    const v = orderById.get(Number(o.id));
    if (o.newer && v && v.eventUs > (newestShipmentUs.get(v.inboxId) ?? -Infinity)) consider(entityKey('order', o.id), v);
  }
  const shipmentById = new Map(chunk.shipments.map((s) => [s.id, s]));
  for (const s of written.shipments) {
    const input = shipmentById.get(Number(s.id))!;
    if (s.newer) consider(entityKey('shipment', s.id), input.version);
    if (s.delivered && input.deliveredByPollOnly !== null) catchAt(input.deliveredByPollOnly, input.deliveredUs ?? 0);
  }
  const returnById = new Map(chunk.returns.map((r) => [r.id, r]));
  for (const r of written.returns) if (r.newer) consider(entityKey('return', r.id), returnById.get(Number(r.id)));
  const txById = new Map(chunk.transactions.map((t) => [t.transactionId, t]));
  for (const t of written.transactions) if (t.newer) consider(entityKey('transaction', t.id), txById.get(t.id));

  const byKey = new Map<string, PollCatch>();
  for (const { row } of normalised) {
    const us = caught.get(row.id);
    if (us === undefined) continue;
    const stream = streamOfPollTopic(row.topic) ?? row.topic ?? 'unknown';
    const k = `${row.sourceId}\u0000${stream}`;
    const c = byKey.get(k) ?? { sourceId: row.sourceId, stream, count: 0, eventUs: [] };
    c.count++;
    c.eventUs.push(us);
    byKey.set(k, c);
  }
  return [...byKey.values()];
}
