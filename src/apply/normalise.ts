import { PollTopics } from '../poll/streams.js';
import type { InboxRow } from '../inbox/claim.js';
import type { ResolveKind, ResolveRequest } from '../poll/resolve-queue.js';
import { firstMicros, isoFromMicros, optionalIso, parseMicros } from '../time.js';

/**
 * One inbox event → the rows it asserts, by topic and by the shape of its body (docs/provider.md §7: an order topic
 * may carry a Shipment, a shipment topic an order-centric event). Pure: no database, no clock. Besides rows it reports
 * resources to fetch by id (an event that names one without standing for it) and drift (fields not in the OpenAPI
 * schema of the resource, or not of its type).
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
  /** How many shipments the order lists (null: the body has no shipments array); the reconciliation's measure of an
   * order wharf holds completely (src/poll/reconcile.ts). */
  shipmentCount: number | null;
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
  /** The source that sent it: an entry of a shipment another source owns is refused (docs/tenancy.md). */
  sourceId: string;
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
  /** The return's channel (OA `channel.id`): decides its client through channel_clients. */
  channelId: number | null;
  /** Position of `status` in the life cycle (returnStatusRank): a return never moves back to an earlier status. */
  statusRank: number;
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
  /** OA: boolean (true billed, false not yet); the legacy strings Invoiced / NotInvoiced are read too (as drift). */
  invoicedStatus: boolean | null;
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

/** A field of a payload the normaliser does not know (`unknown`) or cannot read as the OpenAPI types it (`unreadable`). */
export interface Drift {
  topic: string;
  /** Dotted path from the resource, e.g. `invoiced_status`, `tracking.tracking_id`, `shipments[].foo`. */
  field: string;
  problem: 'unknown' | 'unreadable';
}

export interface Entities {
  orders: OrderRow[];
  shipments: ShipmentRow[];
  deliveries: DeliveryHint[];
  timeline: TimelineRow[];
  returns: ReturnRow[];
  transactions: TransactionRow[];
  resolves: ResolveRequest[];
  drift: Drift[];
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
  if (topic === PollTopics.order || topic === PollTopics.resolvedOrder || topic === 'order.shipped' || topic === 'order.delivered' || topic === 'order_shipped')
    return 'order';
  if (topic === PollTopics.resolvedShipment) return 'shipment';
  if (topic === PollTopics.resolvedReturn) return 'return';
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

// ---- what the OpenAPI (2026-01) says each resource holds: anything else is drift (docs/provider.md §3) -----------

const ORDER_FIELDS = new Set([
  'id', 'reference_id', 'order_number', 'status', 'channel', 'created_date', 'purchase_date', 'type', 'shipments',
  'products', 'recipient', 'financials', 'tags', 'shipping_method', 'gift_message', 'retailer_program_data',
  'shipping_terms', 'last_update_at', 'event_time',
]);
const SHIPMENT_FIELDS = new Set([
  'id', 'order_id', 'reference_id', 'status', 'status_details', 'created_date', 'last_update_at',
  'last_tracking_update_at', 'actual_fulfillment_date', 'delivery_date', 'estimated_fulfillment_date',
  'estimated_fulfillment_date_status', 'tracking', 'location', 'invoice_amount', 'invoice_currency_code',
  'is_tracking_uploaded', 'products', 'recipient', 'measurements', 'parent_cartons', 'ship_option',
  'require_signature', 'insurance_value', 'event_time', 'shipment_id',
]);
/** The order-centric event of `order.shipment.tracking_received` (the one documented dated payload). */
const ORDER_EVENT_FIELDS = new Set(['event_time', 'order_id', 'reference_id', 'status', 'tracking', 'shipment_id']);
const TRACKING_FIELDS = new Set([
  'carrier', 'carrier_service', 'tracking_number', 'tracking_id', 'tracking_url', 'shipping_date', 'bol', 'pro_number', 'scac',
]);
const RETURN_FIELDS = new Set([
  'id', 'reference_id', 'status', 'original_shipment_id', 'insert_date', 'awaiting_arrival_date', 'arrived_date',
  'processing_date', 'completed_date', 'cancelled_date', 'status_history', 'channel', 'fulfillment_center',
  'return_type', 'store_order_id', 'tracking_number', 'shipment_tracking_number', 'customer_name', 'invoice',
  'transactions', 'inventory', 'event_time',
]);
const TRANSACTION_FIELDS = new Set([
  'transaction_id', 'amount', 'currency_code', 'charge_date', 'invoice_id', 'invoice_date', 'invoiced_status',
  'invoice_type', 'reference_id', 'reference_type', 'transaction_type', 'transaction_fee', 'fulfillment_center',
  'taxes', 'additional_details', 'last_update_at', 'event_time',
]);
const TIMELINE_FIELDS = new Set(['shipment_id', 'order_id', 'fetched_at', 'timeline']);
/** Wrappers the normaliser looks through (`{ "data": {…} }`, `{ "order": {…} }`): not drift themselves. */
const WRAPPERS = new Set(['data', 'order', 'shipment', 'return', 'transaction', 'topic', 'type']);

/**
 * Position of a return status in its life cycle (OA: a free string, "i.e. Awaiting Arrival"; the list filter spells
 * AwaitingArrival, Arrived, Processing, Completed, Cancelled). Completed and Cancelled are both final. 0: unknown.
 */
export function returnStatusRank(status: string | null): number {
  switch (status?.replace(/[\s_-]/g, '').toLowerCase()) {
    case 'awaitingarrival':
      return 1;
    case 'arrived':
      return 2;
    case 'processing':
      return 3;
    case 'completed':
    case 'cancelled':
    case 'canceled':
      return 4;
    default:
      return 0;
  }
}

/** A return's own latest time: the newest of its status history and its dated fields (OA has no last_update_at). */
function returnTime(res: Obj): number | undefined {
  let newest: number | undefined;
  const take = (v: unknown) => {
    const us = parseMicros(v);
    if (us !== undefined && (newest === undefined || us > newest)) newest = us;
  };
  for (const f of ['insert_date', 'awaiting_arrival_date', 'arrived_date', 'processing_date', 'completed_date', 'cancelled_date', 'last_update_at'])
    take(res[f]);
  if (Array.isArray(res.status_history)) for (const h of res.status_history) if (isObj(h)) take(h.timestamp);
  return newest;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

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
  const versionOf = (res: Obj, own?: number): number =>
    (poll
      ? firstMicros(res.last_update_at, body.last_update_at, own, body.event_time, ...fallback)
      : firstMicros(body.event_time, res.event_time, res.last_update_at, res.last_tracking_update_at, own, ...fallback)) ??
    0; // unreachable: received_at is always an instant
  const entities: Entities = {
    orders: [],
    shipments: [],
    deliveries: [],
    timeline: [],
    returns: [],
    transactions: [],
    resolves: [],
    drift: [],
  };
  // Rows are written as literals with every key spelled out, never `{ ...base, … }`: a spread makes V8 build the object
  // property by property (measured: about half of this function's time for a charge).
  const base = { inboxId: row.id, via: row.via, sourceId: row.sourceId };
  const drift = (field: string, problem: Drift['problem']) => entities.drift.push({ topic, field, problem });
  /** Records each key of `o` the schema does not list (`prefix` names where `o` sits). */
  const unknownKeys = (o: Obj, known: ReadonlySet<string>, prefix: string) => {
    for (const k in o) if (!known.has(k) && !(prefix === '' && WRAPPERS.has(k))) drift(`${prefix}${k.slice(0, 60)}`, 'unknown');
  };
  /** An optional instant, recording drift when present but unreadable (a date-only value reads as midnight UTC). */
  const instant = (o: Obj, f: string, prefix = '', dateOnly = false): string | null => {
    const v = o[f];
    if (v === undefined || v === null) return null;
    if (dateOnly && typeof v === 'string' && DATE_ONLY.test(v)) return optionalIso(`${v}T00:00:00Z`);
    const iso = optionalIso(v);
    if (iso === null) drift(`${prefix}${f}`, 'unreadable');
    return iso;
  };
  const reader: Reader = { instant, drift };
  const resolve = (kindToFetch: ResolveKind, id: number, reason: string) =>
    entities.resolves.push({ kind: kindToFetch, id, sourceId: base.sourceId, inboxId: base.inboxId, reason });

  try {
    if (kind === 'order' || kind === 'shipment') {
      const [res, path] = resourceOf(body, kind);
      const shape = shapeOf(res, body, kind);
      if (shape === 'order_event') {
        // Order-centric (tracking_received): names an order, not the shipment it is about. Fetch the order.
        unknownKeys(res, ORDER_EVENT_FIELDS, '');
        const orderId = firstId(res.order_id, body.order_id, isObj(body.order) ? body.order.id : undefined);
        if (orderId === null) throw new Dead('order id missing or invalid');
        resolve('order', orderId, 'order-centric payload without a shipment id');
      } else if (shape === 'order') {
        const id = firstId(res.id);
        if (id === null) throw new Dead('order id missing or invalid');
        unknownKeys(res, ORDER_FIELDS, '');
        if (!poll && str(res.status) === null) {
          resolve('order', id, 'order payload without a status');
        } else {
          const eventUs = versionOf(res);
          const channel = isObj(res.channel) ? res.channel : {};
          const channelId = toId(channel.id);
          if (channel.id !== undefined && channelId === null) drift('channel.id', 'unreadable');
          const shipments = res.shipments;
          const order: OrderRow = {
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
            createdDate: instant(res, 'created_date'),
            purchaseDate: instant(res, 'purchase_date'),
            lastUpdateAt: instant(res, 'last_update_at'),
            shipmentCount: Array.isArray(shipments) ? shipments.length : null,
            dataPath: path,
          };
          entities.orders.push(order);
          if (shipments !== undefined && shipments !== null && !Array.isArray(shipments))
            throw new Dead('order shipments is not an array');
          const list = (shipments as unknown[] | undefined) ?? [];
          let newestShipmentUs: number | undefined;
          for (let i = 0; i < list.length; i++) {
            const sh = list[i];
            if (!isObj(sh)) throw new Dead('order shipment is not an object');
            unknownKeys(sh, SHIPMENT_FIELDS, 'shipments[].');
            // Each embedded shipment is versioned by its own last change: a sibling's change is not a change of it.
            const own = firstMicros(sh.last_update_at);
            if (own !== undefined && (newestShipmentUs === undefined || own > newestShipmentUs)) newestShipmentUs = own;
            entities.shipments.push(shipmentRow(sh, base, own ?? eventUs, id, channelId, false, elementPath(path, 'shipments', i), reader, 'shipments[].'));
          }
          // OA's Order has no update time (the simulator's has): its newest shipment's, as the poller versions it
          // (orderVersion), so the reconciliation's count per day of last update finds the order.
          if (order.lastUpdateAt === null && newestShipmentUs !== undefined) order.lastUpdateAt = isoFromMicros(newestShipmentUs);
        }
      } else if (shape === 'shipment') {
        const id = firstId(body.shipment_id, res.id, res.shipment_id, isObj(body.shipment) ? body.shipment.id : undefined, isObj(body.data) ? body.data.id : undefined);
        if (id === null) throw new Dead('shipment id missing or invalid');
        unknownKeys(res, SHIPMENT_FIELDS, '');
        if (!poll && str(res.status) === null) {
          resolve('shipment', id, 'shipment payload without a status');
        } else {
          const orderId = firstId(body.order_id, res.order_id, isObj(body.order) ? body.order.id : undefined);
          const delivered = topic.endsWith('delivered');
          entities.shipments.push(shipmentRow(res, base, versionOf(res), orderId, null, delivered, path, reader, '', id));
        }
      } else {
        throw new Dead(kind === 'order' ? 'order id missing or invalid' : 'shipment id missing or invalid');
      }
    } else if (kind === 'timeline') {
      unknownKeys(body, TIMELINE_FIELDS, '');
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
          sourceId: base.sourceId,
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
      unknownKeys(res, RETURN_FIELDS, '');
      const status = str(res.status);
      if (!poll && status === null) {
        resolve('return', id, 'return payload without a status');
      } else {
        const channel = isObj(res.channel) ? res.channel : {};
        if (res.original_shipment_id != null && toId(res.original_shipment_id) === null) drift('original_shipment_id', 'unreadable');
        entities.returns.push({
          inboxId: base.inboxId,
          via: base.via,
          sourceId: base.sourceId,
          eventUs: versionOf(res, returnTime(res)),
          id,
          referenceId: str(res.reference_id),
          status,
          originalShipmentId: toId(res.original_shipment_id),
          orderId: firstId(res.order_id, body.order_id),
          channelId: toId(channel.id),
          statusRank: returnStatusRank(status),
          dataPath: path,
        });
      }
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
      if (typeof res.amount === 'string') drift('amount', 'unreadable');
      unknownKeys(res, TRANSACTION_FIELDS, '');
      const referenceId = str(res.reference_id);
      const givenType = str(res.reference_type);
      const ref = referenceOf(givenType, referenceId);
      // Stored in the provider's spelling when it names a kind wharf attributes by: the landing catch-up and its index
      // match `Shipment` and `Return` exactly (attribution.ts); another spelling is drift.
      if (ref.type !== givenType) drift('reference_type', 'unreadable');
      const referenceType = ref.type;
      entities.transactions.push({
        inboxId: base.inboxId,
        via: base.via,
        sourceId: base.sourceId,
        eventUs: versionOf(res),
        transactionId,
        amount: String(amount),
        currencyCode: str(res.currency_code),
        chargeDate: instant(res, 'charge_date', '', true),
        invoiceId: toId(res.invoice_id),
        invoiceDate: instant(res, 'invoice_date', '', true),
        invoiceType: str(res.invoice_type),
        invoicedStatus: invoiced(res.invoiced_status, drift),
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

/**
 * Which resource a body of an order or shipment topic is, whatever the topic says (`order.shipped` "fires per
 * shipment": its body may be a Shipment): an Order has `shipments[]`; a Shipment has its own id and an `order_id` (or
 * is a shipment topic's body with an id); a body naming only an `order_id` is an order-centric event.
 */
function shapeOf(res: Obj, body: Obj, kind: 'order' | 'shipment'): 'order' | 'shipment' | 'order_event' | 'none' {
  if (Array.isArray(res.shipments)) return 'order';
  const id = toId(res.id);
  const orderId = firstId(res.order_id, body.order_id, isObj(body.order) ? body.order.id : undefined);
  if (firstId(body.shipment_id, res.shipment_id) !== null) return 'shipment';
  if (id !== null && orderId !== null) return 'shipment';
  if (id !== null) return kind;
  if (orderId !== null) return 'order_event';
  return 'none';
}

/** OA `invoiced_status`: boolean. The legacy strings are read (and counted as drift); anything else is null. */
function invoiced(v: unknown, drift: (field: string, problem: Drift['problem']) => void): boolean | null {
  if (typeof v === 'boolean') return v;
  if (v === undefined || v === null) return null;
  drift('invoiced_status', 'unreadable');
  if (v === 'Invoiced' || v === 'true') return true;
  if (v === 'NotInvoiced' || v === 'false') return false;
  return null;
}

/** How a row builder reads optional instants and reports drift (bound to one event). */
interface Reader {
  instant: (o: Obj, f: string, prefix?: string) => string | null;
  drift: (field: string, problem: Drift['problem']) => void;
}

function shipmentRow(
  s: Obj,
  base: { inboxId: number; via: string; sourceId: string },
  eventUs: number,
  orderId: number | null,
  channelId: number | null,
  deliveredTopic: boolean,
  dataPath: DataPath,
  read: Reader,
  prefix: string,
  id = firstId(s.id, s.shipment_id),
): ShipmentRow {
  if (id === null) throw new Dead('shipment id missing or invalid');
  const { instant } = read;
  const tracking = isObj(s.tracking) ? s.tracking : {};
  if (isObj(s.tracking)) for (const k in tracking) if (!TRACKING_FIELDS.has(k)) read.drift(`${prefix}tracking.${k.slice(0, 60)}`, 'unknown');
  const deliveryDate = instant(s, 'delivery_date', prefix);
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
    createdDate: instant(s, 'created_date', prefix),
    lastUpdateAt: instant(s, 'last_update_at', prefix),
    lastTrackingUpdateAt: instant(s, 'last_tracking_update_at', prefix),
    actualFulfillmentDate: instant(s, 'actual_fulfillment_date', prefix),
    deliveryDate,
    deliveredUs: deliveryDate ? (parseMicros(deliveryDate) ?? null) : deliveredTopic ? eventUs : null,
    dataPath,
  };
}

/** The provider's spelling of the reference types wharf attributes by. */
const CANONICAL_REFERENCE_TYPE = { shipment: 'Shipment', return: 'Return', fc: 'FC' } as const;

/**
 * `Shipment` → shipment id, `Return` → return id, `FC` → inventory id in `{fc}-{inventoryId}-{locationType}`, whatever
 * the type's case and spaces; `type`: the provider's spelling of the kind when it is one of those with a readable id,
 * else the type as given.
 */
export function referenceOf(type: string | null, id: string | null): { refKind: RefKind; refKey: number | null; type: string | null } {
  const t = type?.trim().toLowerCase();
  if (t !== 'shipment' && t !== 'return' && t !== 'fc') return { refKind: null, refKey: null, type };
  const key = t === 'fc' ? toId(id?.split('-')[1]) : toId(id);
  return key === null ? { refKind: 'invalid', refKey: null, type } : { refKind: t, refKey: key, type: CANONICAL_REFERENCE_TYPE[t] };
}
