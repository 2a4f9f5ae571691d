import { PollTopics } from '../poll/streams.js';
import type { InboxRow } from '../inbox/claim.js';
import { firstMicros, isoFromMicros, optionalIso, parseMicros } from '../time.js';

/**
 * One inbox event → the rows it asserts, by topic (docs/provider.md). Pure: no database, no clock.
 *
 * Defensive about where things live: ids in `shipment_id`, `id`, `shipment.id`, `data.id`; order ids in `order_id`,
 * `order.id`; the version time in `event_time`, `last_update_at`, `last_tracking_update_at`, else the inbox row's
 * event_time, else its received_at (so every event has a version). Poll events are versioned by the resource's own
 * `last_update_at` (timelines by `fetched_at`). A secondary field that is not what it should be is stored as null;
 * only what the row cannot exist without (its id, a transaction's amount) makes the event dead.
 */

/**
 * Where a stored document (`data`) lives inside the body of the inbox row that carried the version (`inboxId`): a
 * PostgreSQL text[] literal for `#>`, `{}` for the whole body, `{shipments,0}` for an order's first shipment. The
 * upserts extract it in SQL from the claimed row, so JavaScript never re-serialises (or ships back) what it parsed.
 */
export type DataPath = string;

/** The version an entity row holds: newer wins, ties broken by inbox id, so arrival order never matters. */
export interface Version {
  eventUs: number;
  inboxId: number;
  via: string;
}

export interface OrderRow extends Version {
  id: number;
  sourceId: string;
  referenceId: string | null;
  orderNumber: string | null;
  status: string | null;
  channelId: number | null;
  channelName: string | null;
  createdDate: string | null;
  purchaseDate: string | null;
  lastUpdateAt: string | null;
  /** Where the order lives in its inbox row's body (see DataPath); stored without its shipments. */
  dataPath: DataPath;
}

export interface ShipmentRow extends Version {
  id: number;
  orderId: number | null;
  sourceId: string;
  /** From the enclosing order, when the shipment came inside one: decides the client through channel_clients. */
  channelId: number | null;
  referenceId: string | null;
  status: string | null;
  trackingCarrier: string | null;
  trackingNumber: string | null;
  trackingUrl: string | null;
  createdDate: string | null;
  lastUpdateAt: string | null;
  lastTrackingUpdateAt: string | null;
  actualFulfillmentDate: string | null;
  deliveryDate: string | null;
  /** When this version says the shipment was delivered (delivery_date, or a delivered topic). */
  deliveredUs: number | null;
  dataPath: DataPath;
}

/** A timeline's delivery (609): sets shipments.delivered_at without being a version of the shipment. */
export interface DeliveryHint {
  shipmentId: number;
  sourceId: string;
  deliveredUs: number;
  inboxId: number;
  via: string;
}

export interface TimelineRow {
  shipmentId: number;
  logTypeId: number;
  timestamp: string;
  logTypeName: string | null;
  logTypeText: string | null;
  metadata: string | null;
}

export interface ReturnRow extends Version {
  id: number;
  sourceId: string;
  referenceId: string | null;
  status: string | null;
  originalShipmentId: number | null;
  orderId: number | null;
  dataPath: DataPath;
}

/** How a transaction's reference leads to a client; `invalid`: an attributable type whose id cannot be read. */
export type RefKind = 'shipment' | 'return' | 'fc' | 'invalid' | null;

export interface TransactionRow extends Version {
  transactionId: string;
  sourceId: string;
  amount: string;
  currencyCode: string | null;
  chargeDate: string | null;
  invoiceId: number | null;
  invoiceDate: string | null;
  invoiceType: string | null;
  invoicedStatus: string | null;
  referenceId: string | null;
  referenceType: string | null;
  transactionFee: string | null;
  transactionType: string | null;
  fulfillmentCenter: string | null;
  taxes: string | null;
  additionalDetails: string | null;
  refKind: RefKind;
  /** The shipment, return or inventory item id the reference names. */
  refKey: number | null;
}

export interface Entities {
  orders: OrderRow[];
  shipments: ShipmentRow[];
  deliveries: DeliveryHint[];
  timeline: TimelineRow[];
  returns: ReturnRow[];
  transactions: TransactionRow[];
}

export type Normalised =
  | { outcome: 'apply'; entities: Entities }
  | { outcome: 'dead'; reason: string }
  | { outcome: 'ignored'; reason: string };

export type EventKind = 'order' | 'shipment' | 'timeline' | 'return' | 'transaction';

const LEGACY_SHIPMENT_TOPICS = new Set([
  'shipment_delivered',
  'shipment_exception',
  'shipment_onhold',
  'shipment_cancelled',
]);

/** What a topic asserts; undefined for a topic we do not know (kept as ignored, replayable). */
export function kindOfTopic(topic: string): EventKind | undefined {
  if (topic === PollTopics.order || topic === 'order.shipped' || topic === 'order.delivered' || topic === 'order_shipped')
    return 'order';
  if (topic === PollTopics.timeline) return 'timeline';
  if (topic.startsWith('order.shipment.') || LEGACY_SHIPMENT_TOPICS.has(topic)) return 'shipment';
  if (topic.startsWith('return.') || topic === PollTopics.return) return 'return';
  if (topic.startsWith('billing.') || topic === PollTopics.transaction) return 'transaction';
  return undefined;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null =>
  typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : null;
const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));

/** A provider id: a positive safe integer, as a number or a decimal string. */
export function toId(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,16}$/.test(v.trim()) ? Number(v) : Number.NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** The first argument that is an id. */
function firstId(...values: unknown[]): number | null {
  for (const v of values) {
    const id = toId(v);
    if (id !== null) return id;
  }
  return null;
}

/** The resource inside a payload and its DataPath: `body[key]` or `body.data` when the body itself does not look
 * like it. */
function resourceOf(body: Obj, key: string): [Obj, DataPath] {
  if (isObj(body[key]) && (body[key] as Obj).id !== undefined) return [body[key] as Obj, `{${key}}`];
  if (body.id === undefined && body[`${key}_id`] === undefined && isObj(body.data)) return [body.data as Obj, '{data}'];
  return [body, '{}'];
}

/** The DataPath of element `i` of the array `key` inside the resource at `path`. */
const elementPath = (path: DataPath, key: string, i: number): DataPath =>
  path === '{}' ? `{${key},${i}}` : `${path.slice(0, -1)},${key},${i}}`;

class Dead extends Error {}

const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

export function normaliseEvent(row: InboxRow): Normalised {
  let body: unknown;
  try {
    body = JSON.parse(row.body);
  } catch {
    return { outcome: 'dead', reason: 'body is not JSON' };
  }
  if (!isObj(body)) return { outcome: 'dead', reason: 'body is not a JSON object' };
  const topic = row.topic ?? str(body.topic) ?? str(body.type);
  if (!topic) return { outcome: 'ignored', reason: 'no topic' };
  const kind = kindOfTopic(topic);
  if (!kind) return { outcome: 'ignored', reason: `unknown topic ${topic.slice(0, 100)}` };

  const poll = row.via === 'poll';
  const fallback = [row.eventTime, row.receivedAt];
  /** The version time of the event's top-level resource. */
  const versionOf = (res: Obj): number =>
    (poll
      ? firstMicros(res.last_update_at, body.last_update_at, body.event_time, ...fallback)
      : firstMicros(body.event_time, res.event_time, res.last_update_at, res.last_tracking_update_at, ...fallback)) ??
    0; // unreachable: received_at is always an instant
  const entities: Entities = { orders: [], shipments: [], deliveries: [], timeline: [], returns: [], transactions: [] };
  // Rows are written as literals with every key spelled out, never `{ ...base, … }`: a spread makes V8 build the object
  // property by property (measured: about half of this function's time for a charge).
  const base = { inboxId: row.id, via: row.via, sourceId: row.sourceId };

  try {
    if (kind === 'order') {
      const [res, path] = resourceOf(body, 'order');
      const id = firstId(res.id, res.order_id);
      if (id === null) throw new Dead('order id missing or invalid');
      const eventUs = versionOf(res);
      const channel = isObj(res.channel) ? res.channel : {};
      const channelId = toId(channel.id);
      const shipments = res.shipments;
      entities.orders.push({
        inboxId: base.inboxId,
        via: base.via,
        sourceId: base.sourceId,
        eventUs,
        id,
        referenceId: str(res.reference_id),
        orderNumber: str(res.order_number),
        status: str(res.status),
        channelId,
        channelName: str(channel.name),
        createdDate: optionalIso(res.created_date),
        purchaseDate: optionalIso(res.purchase_date),
        lastUpdateAt: optionalIso(res.last_update_at),
        dataPath: path,
      });
      if (shipments !== undefined && shipments !== null && !Array.isArray(shipments))
        throw new Dead('order shipments is not an array');
      const list = (shipments as unknown[] | undefined) ?? [];
      for (let i = 0; i < list.length; i++) {
        const s = list[i];
        if (!isObj(s)) throw new Dead('order shipment is not an object');
        // Each embedded shipment is versioned by its own last change: a sibling's change is not a change of it.
        const us = firstMicros(s.last_update_at) ?? eventUs;
        entities.shipments.push(shipmentRow(s, base, us, id, channelId, false, elementPath(path, 'shipments', i)));
      }
    } else if (kind === 'shipment') {
      const [res, path] = resourceOf(body, 'shipment');
      const id = firstId(body.shipment_id, res.id, isObj(body.shipment) ? body.shipment.id : undefined, isObj(body.data) ? body.data.id : undefined);
      if (id === null) throw new Dead('shipment id missing or invalid');
      const orderId = firstId(body.order_id, res.order_id, isObj(body.order) ? body.order.id : undefined);
      const delivered = topic.endsWith('delivered');
      entities.shipments.push(shipmentRow(res, base, versionOf(res), orderId, null, delivered, path, id));
    } else if (kind === 'timeline') {
      const shipmentId = firstId(body.shipment_id, body.id);
      if (shipmentId === null) throw new Dead('timeline shipment id missing or invalid');
      if (!Array.isArray(body.timeline)) throw new Dead('timeline is not an array');
      let deliveredUs: number | undefined;
      for (const e of body.timeline) {
        if (!isObj(e)) throw new Dead('timeline entry is not an object');
        const logTypeId = Number(e.log_type_id);
        const us = parseMicros(e.timestamp);
        if (!Number.isInteger(logTypeId) || logTypeId < 0 || logTypeId > 2 ** 31 - 1 || us === undefined)
          throw new Dead('timeline entry without a log type id or timestamp');
        entities.timeline.push({
          shipmentId,
          logTypeId,
          timestamp: isoFromMicros(us),
          logTypeName: str(e.log_type_name),
          logTypeText: str(e.log_type_text),
          metadata: json(e.metadata),
        });
        if (logTypeId === 609 && (deliveredUs === undefined || us < deliveredUs)) deliveredUs = us;
      }
      if (deliveredUs !== undefined) entities.deliveries.push({ inboxId: base.inboxId, via: base.via, sourceId: base.sourceId, shipmentId, deliveredUs });
    } else if (kind === 'return') {
      const [res, path] = resourceOf(body, 'return');
      const id = firstId(res.id, body.return_id);
      if (id === null) throw new Dead('return id missing or invalid');
      entities.returns.push({
        inboxId: base.inboxId,
        via: base.via,
        sourceId: base.sourceId,
        eventUs: versionOf(res),
        id,
        referenceId: str(res.reference_id),
        status: str(res.status),
        originalShipmentId: toId(res.original_shipment_id),
        orderId: firstId(res.order_id, body.order_id),
        dataPath: path,
      });
    } else {
      const [res] = resourceOf(body, 'transaction');
      const transactionId = str(res.transaction_id) ?? str(res.id);
      // A lone surrogate (from a JSON escape) reaches PostgreSQL as U+FFFD: the id read back would match no input.
      if (!transactionId || transactionId.length > 200 || /\p{Cs}/u.test(transactionId))
        throw new Dead('transaction id missing or invalid');
      // A string amount must be a decimal: Number('') and Number(' ') are 0, Number('0x1f') is 31.
      const amount =
        typeof res.amount === 'number'
          ? res.amount
          : typeof res.amount === 'string' && DECIMAL.test(res.amount)
            ? Number(res.amount)
            : Number.NaN;
      if (!Number.isFinite(amount)) throw new Dead('transaction amount missing or not a number');
      const referenceType = str(res.reference_type);
      const referenceId = str(res.reference_id);
      const ref = referenceOf(referenceType, referenceId);
      entities.transactions.push({
        inboxId: base.inboxId,
        via: base.via,
        sourceId: base.sourceId,
        eventUs: versionOf(res),
        transactionId,
        amount: String(amount),
        currencyCode: str(res.currency_code),
        chargeDate: optionalIso(res.charge_date),
        invoiceId: toId(res.invoice_id),
        invoiceDate: optionalIso(res.invoice_date),
        invoiceType: str(res.invoice_type),
        invoicedStatus: str(res.invoiced_status),
        referenceId,
        referenceType,
        transactionFee: str(res.transaction_fee),
        transactionType: str(res.transaction_type),
        fulfillmentCenter: str(res.fulfillment_center),
        taxes: json(res.taxes),
        additionalDetails: json(res.additional_details),
        refKind: ref.refKind,
        refKey: ref.refKey,
      });
    }
  } catch (err) {
    if (err instanceof Dead) return { outcome: 'dead', reason: err.message };
    // Anything else thrown here is about this event's body (JSON.stringify of a body nested ~10,000 deep throws
    // RangeError): thrown out, it failed the chunk before any statement, so the drain retried it forever.
    return { outcome: 'dead', reason: `cannot interpret: ${(err as Error).message ?? String(err)}`.slice(0, 300) };
  }
  return { outcome: 'apply', entities };
}

function shipmentRow(
  s: Obj,
  base: { inboxId: number; via: string; sourceId: string },
  eventUs: number,
  orderId: number | null,
  channelId: number | null,
  deliveredTopic: boolean,
  dataPath: DataPath,
  id = firstId(s.id, s.shipment_id),
): ShipmentRow {
  if (id === null) throw new Dead('shipment id missing or invalid');
  const tracking = isObj(s.tracking) ? s.tracking : {};
  const deliveryDate = optionalIso(s.delivery_date);
  return {
    inboxId: base.inboxId,
    via: base.via,
    sourceId: base.sourceId,
    eventUs,
    id,
    orderId: toId(s.order_id) ?? orderId,
    channelId,
    referenceId: str(s.reference_id),
    status: str(s.status),
    trackingCarrier: str(tracking.carrier),
    trackingNumber: str(tracking.tracking_number) ?? str(tracking.tracking_id),
    trackingUrl: str(tracking.tracking_url),
    createdDate: optionalIso(s.created_date),
    lastUpdateAt: optionalIso(s.last_update_at),
    lastTrackingUpdateAt: optionalIso(s.last_tracking_update_at),
    actualFulfillmentDate: optionalIso(s.actual_fulfillment_date),
    deliveryDate,
    deliveredUs: deliveryDate ? (parseMicros(deliveryDate) ?? null) : deliveredTopic ? eventUs : null,
    dataPath,
  };
}

/** `Shipment` → shipment id, `Return` → return id, `FC` → inventory id in `{fc}-{inventoryId}-{locationType}`. */
export function referenceOf(type: string | null, id: string | null): { refKind: RefKind; refKey: number | null } {
  const t = type?.trim().toLowerCase();
  if (t !== 'shipment' && t !== 'return' && t !== 'fc') return { refKind: null, refKey: null };
  const key = t === 'fc' ? toId(id?.split('-')[1]) : toId(id);
  return key === null ? { refKind: 'invalid', refKey: null } : { refKind: t, refKey: key };
}
