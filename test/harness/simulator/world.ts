import type {
  BillingTopics,
  Order,
  OrderTopics,
  Return,
  ReturnTopics,
  Shipment,
  ShipmentTopics,
  TimelineEntry,
  Transaction,
} from '../../../src/provider/shapes.js';
import { SubscribableTopics, TimelineLogTypes } from '../../../src/provider/shapes.js';
import {
  CARRIERS,
  CITIES,
  EXCEPTION_REASONS,
  FIRST_NAMES,
  FULFILLMENT_CENTERS,
  HOLD_REASONS,
  LAST_NAMES,
  SHIPMENT_FEES,
  STORAGE_LOCATION_TYPES,
  TIMELINE_WORDING,
} from './catalog.js';
import { createRandom } from './random.js';

/**
 * The simulated provider's state: a seeded, mutable world of clients (provider accounts), orders, shipments,
 * timelines, returns, inventory and billing transactions, with a clock the caller controls.
 *
 * Invariant that keeps snapshots cheap: nested objects of a resource (tracking, status_details, products, …) are
 * replaced, never mutated in place, so a shallow copy of a resource is a snapshot of it.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

export const DEFAULT_WORLD_START = '2026-01-15T00:00:00.000Z';

export interface WorldOptions {
  /** Default 1. */
  seed?: number;
  /** Provider accounts; each is one wharf source. Default 3. */
  clients?: number;
  /** Orders created during the history before `start`. Default 100. */
  ordersPerClient?: number;
  /** Each order has 1..this shipments. Default 2. */
  maxShipmentsPerOrder?: number;
  /** Each labelled shipment gets 1..this transactions, one per fee. Default 4 (the number of shipment fees). */
  maxTransactionsPerShipment?: number;
  /** Products (each with one inventory item) per client. Default 12. */
  productsPerClient?: number;
  /** How far back the initial history reaches. Default 30. */
  historyDays?: number;
  /** The world's clock at creation. Default DEFAULT_WORLD_START, so a seed alone fixes every timestamp. */
  start?: Date | string | number;
  /**
   * The subscription's API version: `2026-01` announces only the topics of its enum (OA `Webhooks.Topics`: no
   * `order.delivered`, no `order.shipment.tracking.updated`; those changes are found by polling). Default `2026-07`,
   * which has them.
   */
  webhookVersion?: '2026-01' | '2026-07';
}

export interface StepOptions {
  /** Orders created, each with 1..maxShipmentsPerOrder shipments. Default 2. */
  newOrders?: number;
  /** Shipments moved forward one stage (roughly one in ten is return work instead). Default 5. */
  updates?: number;
  /** Billing changes: invoicing an older transaction, storage fees, refunds, credits, other charges. Default 2. */
  billing?: number;
  /** World time the step spans; changes are spread over it at distinct milliseconds. Default 1000. */
  durationMs?: number;
}

export interface Client {
  id: number;
  name: string;
  /** The API bearer token of this account. */
  token: string;
  /** Its webhook signing secret, `whsec_<base64 of 24 bytes>`. */
  secret: string;
  channel: { id: number; name: string };
}

export interface InventoryItem {
  id: number;
  client_id: number;
  product_id: number;
  sku: string;
  name: string;
  fulfillment_center_id: number;
}

export interface Subscription {
  id: number;
  secret: string;
  topics: string[];
  url: string;
  description: string | null;
  created_at: string;
  enabled: boolean;
}

type EventTime = { event_time: string };
/** One change, as the provider would announce it: the payload is the resource plus `event_time` (see shapes.ts). */
export type ChangeEvent =
  | { topic: (typeof OrderTopics)[number]; clientId: number; payload: Order & EventTime }
  | { topic: (typeof ShipmentTopics)[number]; clientId: number; payload: Shipment & EventTime }
  | { topic: (typeof ReturnTopics)[number]; clientId: number; payload: Return & EventTime }
  | { topic: (typeof BillingTopics)[number]; clientId: number; payload: Transaction & EventTime };

export const UnattributedReasons = {
  /** Default, TicketNumber, WRO, …: nothing in the reference leads to a client. */
  notAttributable: 'reference_type_not_attributable',
  /** The reference names a shipment, return or inventory item the provider does not know. */
  unknownReference: 'unknown_reference',
} as const;

/** The canonical state, for comparing what wharf stored against what the provider holds. */
export interface Truth {
  now: string;
  clients: { id: number; name: string; channel: { id: number; name: string } }[];
  orders: (Omit<Order, 'shipments'> & { last_update_at: string; client_id: number; shipment_ids: number[] })[];
  shipments: (Shipment & { client_id: number })[];
  returns: (Return & { client_id: number })[];
  inventory: InventoryItem[];
  /** `source_client_id`: the account that serves it; `client_id`: whom it is attributed to through its reference. */
  transactions: (Transaction & {
    source_client_id: number;
    client_id: number | null;
    unattributed_reason: (typeof UnattributedReasons)[keyof typeof UnattributedReasons] | null;
  })[];
}

export interface World {
  readonly clients: readonly Client[];
  now(): number;
  advance(ms: number): void;
  /** Mutates the world over `durationMs` of world time and returns the change events, in the order they happened. */
  step(options?: StepOptions): ChangeEvent[];
  truth(): Truth;
  size(): { orders: number; shipments: number; returns: number; transactions: number; inventory: number };

  clientByToken(token: string): Client | undefined;
  /** The client's orders sorted by (last_update_at, id) ascending. Do not mutate. */
  ordersByLastUpdate(clientId: number): readonly Order[];
  /** The client's transactions sorted by (charge_date, transaction_id) ascending. Do not mutate. */
  transactionsByChargeDate(clientId: number): readonly Transaction[];
  /** undefined for unknown ids and for another client's. */
  shipment(clientId: number, id: number): Shipment | undefined;
  timeline(clientId: number, shipmentId: number): TimelineEntry[] | undefined;
  returnById(clientId: number, id: number): Return | undefined;
  /** The client's returns, in creation order. Do not mutate. */
  returnsOf(clientId: number): readonly Return[];
  /** One order (with its shipments); undefined for unknown ids and for another client's. */
  order(clientId: number, id: number): Order | undefined;
  subscriptions(clientId: number): Subscription[];
  subscribe(
    clientId: number,
    input: { topics: string[]; url: string; description?: string; secret?: string },
  ): Subscription;
  setSubscriptionEnabled(subscriptionId: number, enabled: boolean): void;
  /** Removes one of the client's subscriptions; false when it has no such subscription. */
  unsubscribe(clientId: number, subscriptionId: number): boolean;
}

type SimOrder = Order & { last_update_at: string };
interface ClientState {
  client: Client;
  inventory: InventoryItem[];
  orders: SimOrder[];
  transactions: Transaction[];
  subscriptions: Subscription[];
}
interface ShipmentRecord {
  shipment: Shipment;
  order: SimOrder;
  clientId: number;
  /** Flat pairs: log_type_id, epoch ms. Entries are built on request; this keeps 50,000 shipments small. */
  timeline: number[];
  returned: boolean;
}
interface ReturnRecord {
  ret: Return;
  clientId: number;
}
interface TransactionRecord {
  txn: Transaction;
  clientId: number;
}
type NewTransaction = Pick<
  Transaction,
  'amount' | 'reference_id' | 'reference_type' | 'transaction_fee' | 'invoice_type'
> &
  Partial<Pick<Transaction, 'transaction_type' | 'fulfillment_center' | 'additional_details'>>;

let lastIsoMs = Number.NaN;
let lastIso = '';
/** ISO-8601 with milliseconds. Remembers its last answer: one change stamps several fields with the same instant. */
function iso(ms: number): string {
  if (ms !== lastIsoMs) {
    lastIsoMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}
/** The provider's event_time: 7 fractional digits. */
const iso7 = (ms: number): string => `${iso(ms).slice(0, -1)}0000Z`;
const money = (n: number): number => Math.round(n * 100) / 100;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Removes items[i] in O(1) by moving the last item into its place. */
function takeAt<T>(items: T[], i: number): void {
  items[i] = items[items.length - 1];
  items.pop();
}

export function createWorld(options: WorldOptions = {}): World {
  const o = {
    seed: options.seed ?? 1,
    clients: options.clients ?? 3,
    ordersPerClient: options.ordersPerClient ?? 100,
    maxShipmentsPerOrder: options.maxShipmentsPerOrder ?? 2,
    maxTransactionsPerShipment: options.maxTransactionsPerShipment ?? SHIPMENT_FEES.length,
    productsPerClient: options.productsPerClient ?? 12,
    historyDays: options.historyDays ?? 30,
  };
  const start = new Date(options.start ?? DEFAULT_WORLD_START).getTime();
  if (Number.isNaN(start)) throw new Error(`createWorld: invalid start ${String(options.start)}`);
  const rng = createRandom(o.seed);
  let clock = start;
  /** Bumped on every mutation; the sorted views are cached against it. */
  let version = 0;
  /** Where emit() writes; null while building the history, which announces nothing. */
  let sink: ChangeEvent[] | null = null;

  const ids = { order: 100_000_001, shipment: 200_000_001, ret: 300_000_001, inventory: 40_001, product: 7_000_001 };
  let subscriptionId = 1;
  const states: ClientState[] = [];
  const byToken = new Map<string, ClientState>();
  const shipments = new Map<number, ShipmentRecord>();
  const ordersById = new Map<number, { order: SimOrder; clientId: number }>();
  const returns = new Map<number, ReturnRecord>();
  const transactions = new Map<string, TransactionRecord>();
  const inventory = new Map<number, InventoryItem>();
  const invoiceIds = new Map<string, number>();

  // Work lists for step(): random picks and O(1) removal. Rebuilt from scratch after the history is built.
  let active: ShipmentRecord[] = [];
  let delivered: ShipmentRecord[] = [];
  let openReturns: ReturnRecord[] = [];
  let uninvoiced: TransactionRecord[] = [];

  const stateOf = (clientId: number): ClientState => states[clientId - 1];

  const announced: ReadonlySet<string> | null = options.webhookVersion === '2026-01' ? new Set(SubscribableTopics) : null;
  /** Takes a thunk so that building the history, which announces nothing, never pays for payloads. */
  function emit(event: () => ChangeEvent): void {
    if (!sink) return;
    const e = event();
    if (announced === null || announced.has(e.topic)) sink.push(e);
  }
  const orderSnapshot = (order: Order, t: number): Order & EventTime => ({
    ...order,
    shipments: order.shipments.map((s) => ({ ...s })),
    event_time: iso7(t),
  });

  function transactionId(t: number): string {
    // ULID-like: 10 time characters then 16 random ones, so ids look like the provider's opaque strings.
    let time = '';
    for (let n = t, i = 0; i < 10; i++, n = Math.floor(n / 32)) time = CROCKFORD[n % 32] + time;
    let tail = '';
    for (let i = 0; i < 16; i++) tail += CROCKFORD[rng.int(0, 31)];
    return time + tail;
  }

  for (let id = 1; id <= o.clients; id++) {
    const client: Client = {
      id,
      name: `Client ${id}`,
      token: `pat_${rng.base62(40)}`,
      secret: `whsec_${rng.bytes(24).toString('base64')}`,
      channel: { id: 5000 + id, name: `client-${id}-store` },
    };
    const state: ClientState = { client, inventory: [], orders: [], transactions: [], subscriptions: [] };
    for (let p = 0; p < o.productsPerClient; p++) {
      const item: InventoryItem = {
        id: ids.inventory++,
        client_id: id,
        product_id: ids.product++,
        sku: `C${id}-SKU-${p + 1}`,
        name: `Client ${id} product ${p + 1}`,
        fulfillment_center_id: rng.pick(FULFILLMENT_CENTERS).id,
      };
      state.inventory.push(item);
      inventory.set(item.id, item);
    }
    states.push(state);
    byToken.set(client.token, state);
  }

  // --- orders and shipments -----------------------------------------------------------------------------------

  function createOrder(state: ClientState, t: number): SimOrder {
    const { client } = state;
    const lines = rng.shuffle(state.inventory.slice()).slice(0, rng.int(1, 3));
    const products = lines.map((item) => ({ id: item.product_id, reference_id: item.sku, quantity: rng.int(1, 3) }));
    const place = rng.pick(CITIES);
    const recipient = {
      name: `${rng.pick(FIRST_NAMES)} ${rng.pick(LAST_NAMES)}`,
      address: { address1: `${rng.int(1, 999)} Main St`, ...place, country: 'US' },
    };
    const id = ids.order++;
    const order: SimOrder = {
      id,
      reference_id: `${client.channel.name}-${id}`,
      order_number: String(id - 99_000_000),
      status: 'Processing',
      created_date: iso(t),
      purchase_date: iso(t - rng.int(0, 2 * HOUR)),
      last_update_at: iso(t),
      channel: client.channel,
      shipments: [],
      products,
      recipient,
      financials: { total_price: money(products.reduce((sum, p) => sum + p.quantity * 19.99, 0)) },
      tags: [],
      type: 'DTC',
      shipping_method: rng.pick(['Standard', 'Expedited', '2-Day']),
    };
    // Lines are split across the shipments, so an order never has more shipments than lines.
    const count = Math.min(rng.int(1, o.maxShipmentsPerOrder), products.length);
    for (let k = 0; k < count; k++) {
      const shipment: Shipment = {
        id: ids.shipment++,
        order_id: id,
        reference_id: order.reference_id,
        status: 'Processing',
        status_details: [],
        created_date: iso(t),
        last_update_at: iso(t),
        last_tracking_update_at: null,
        actual_fulfillment_date: null,
        delivery_date: null,
        tracking: null,
        location: rng.pick(FULFILLMENT_CENTERS),
        invoice_amount: null,
        invoice_currency_code: null,
        products: products.filter((_, i) => i % count === k),
        recipient,
      };
      order.shipments.push(shipment);
      const timeline = [TimelineLogTypes.created, t];
      const record: ShipmentRecord = { shipment, order, clientId: client.id, timeline, returned: false };
      shipments.set(shipment.id, record);
      active.push(record);
    }
    state.orders.push(order);
    ordersById.set(order.id, { order, clientId: client.id });
    version++;
    emit(() => ({ topic: 'order.shipped', clientId: client.id, payload: orderSnapshot(order, t) }));
    return order;
  }

  function deriveOrderStatus(order: Order): Order['status'] {
    const live = order.shipments.filter((s) => s.status !== 'Cancelled');
    if (live.length === 0) return 'Cancelled';
    if (live.some((s) => s.status === 'Exception')) return 'Exception';
    const done = live.filter((s) => s.status === 'Completed').length;
    if (done === live.length) return 'Fulfilled';
    return done > 0 ? 'PartiallyFulfilled' : 'Processing';
  }

  /** Records a change of a shipment at t; its order's last_update_at is the max of its own and its shipments'. */
  function touch(record: ShipmentRecord, t: number): void {
    const stamp = iso(t);
    record.shipment.last_update_at = stamp;
    if (stamp > record.order.last_update_at) record.order.last_update_at = stamp;
    record.order.status = deriveOrderStatus(record.order);
    version++;
  }

  function emitShipment(record: ShipmentRecord, topic: (typeof ShipmentTopics)[number], t: number): void {
    emit(() => ({ topic, clientId: record.clientId, payload: { ...record.shipment, event_time: iso7(t) } }));
  }

  const isTerminal = (r: ShipmentRecord): boolean =>
    r.shipment.status === 'Cancelled' || r.shipment.delivery_date !== null;
  const lastLog = (r: ShipmentRecord): number => r.timeline[r.timeline.length - 2];

  /** Moves a shipment one stage forward along Processing → LabeledCreated → Completed → delivered. */
  function advanceShipment(record: ShipmentRecord, t: number): void {
    const s = record.shipment;
    if (s.status === 'Processing' || s.status === 'OnHold' || s.status === 'Exception') {
      // Held shipments are released into labelling or cancelled; new ones are sometimes held first.
      const r = rng.next();
      const held = s.status !== 'Processing';
      if (!held && r < 0.04) hold(record, 'OnHold', t);
      else if (!held && r < 0.08) hold(record, 'Exception', t);
      else if (r < (held ? 0.2 : 0.11)) cancel(record, t);
      else label(record, t);
    } else if (s.status === 'LabeledCreated') {
      s.status = 'Completed';
      s.actual_fulfillment_date = iso(t);
      track(record, TimelineLogTypes.inTransit, t);
    } else if (lastLog(record) !== TimelineLogTypes.outForDelivery) {
      track(record, TimelineLogTypes.outForDelivery, t);
    } else if (rng.chance(0.1)) {
      track(record, TimelineLogTypes.deliveryAttemptFailed, t);
    } else {
      deliver(record, t);
    }
  }

  function cancel(record: ShipmentRecord, t: number): void {
    record.shipment.status = 'Cancelled';
    record.shipment.status_details = [];
    touch(record, t);
    emitShipment(record, 'order.shipment.cancelled', t);
  }

  function deliver(record: ShipmentRecord, t: number): void {
    record.shipment.delivery_date = iso(t);
    record.shipment.last_tracking_update_at = iso(t);
    record.timeline.push(TimelineLogTypes.delivered, t);
    touch(record, t);
    emitShipment(record, 'order.shipment.delivered', t);
    if (record.order.shipments.every((x) => x.status === 'Cancelled' || x.delivery_date !== null)) {
      emit(() => ({ topic: 'order.delivered', clientId: record.clientId, payload: orderSnapshot(record.order, t) }));
    }
  }

  function hold(record: ShipmentRecord, status: 'OnHold' | 'Exception', t: number): void {
    record.shipment.status = status;
    record.shipment.status_details = [{ ...rng.pick(status === 'OnHold' ? HOLD_REASONS : EXCEPTION_REASONS) }];
    touch(record, t);
    emitShipment(record, status === 'OnHold' ? 'order.shipment.on_hold' : 'order.shipment.exception', t);
  }

  function track(record: ShipmentRecord, logType: number, t: number): void {
    record.timeline.push(logType, t);
    record.shipment.last_tracking_update_at = iso(t);
    touch(record, t);
    emitShipment(record, 'order.shipment.tracking.updated', t);
  }

  function label(record: ShipmentRecord, t: number): void {
    const s = record.shipment;
    const carrier = rng.pick(CARRIERS);
    const trackingNumber = `9${rng.int(100_000_000, 999_999_999)}${rng.int(100_000_000, 999_999_999)}`;
    s.status = 'LabeledCreated';
    s.status_details = [];
    s.tracking = {
      carrier: carrier.name,
      carrier_service: rng.pick(carrier.services),
      tracking_number: trackingNumber,
      tracking_url: carrier.url + trackingNumber,
      shipping_date: iso(t),
    };
    record.timeline.push(
      TimelineLogTypes.picked,
      t,
      TimelineLogTypes.packed,
      t,
      TimelineLogTypes.labeled,
      t,
      TimelineLogTypes.labelValidated,
      t,
    );
    const fees = [SHIPMENT_FEES[0], ...rng.shuffle(SHIPMENT_FEES.slice(1))].slice(
      0,
      rng.int(1, Math.min(o.maxTransactionsPerShipment, SHIPMENT_FEES.length)),
    );
    const amounts = fees.map((fee) => money(fee === 'Shipping' ? 4 + rng.next() * 8 : 0.25 + rng.next() * 2));
    s.invoice_amount = money(amounts.reduce((a, b) => a + b, 0));
    s.invoice_currency_code = 'USD';
    touch(record, t);
    emit(() => ({ topic: 'order.shipped', clientId: record.clientId, payload: orderSnapshot(record.order, t) }));
    // Charges are sometimes back-dated by up to three days, so a poller must re-scan a trailing window.
    const chargeMs = rng.chance(0.15) ? t - rng.int(1, 72) * HOUR : t;
    fees.forEach((fee, i) => {
      addTransaction(record.clientId, chargeMs, t, {
        amount: amounts[i],
        reference_id: String(s.id),
        reference_type: 'Shipment',
        transaction_fee: fee,
        invoice_type: fee === 'Shipping' ? 'Shipping' : 'AdditionalFee',
        fulfillment_center: s.location?.name ?? null,
        additional_details: { TrackingId: trackingNumber },
      });
    });
  }

  // --- returns --------------------------------------------------------------------------------------------------

  function createReturn(record: ShipmentRecord, t: number): ReturnRecord {
    record.returned = true;
    const id = ids.ret++;
    const state = stateOf(record.clientId);
    const ret: Return = {
      id,
      reference_id: `RMA-${id}`,
      status: 'AwaitingArrival',
      original_shipment_id: record.shipment.id,
      insert_date: iso(t),
      awaiting_arrival_date: iso(t),
      arrived_date: null,
      processing_date: null,
      completed_date: null,
      cancelled_date: null,
      status_history: [{ status: 'AwaitingArrival', timestamp: iso(t) }],
      channel: state.client.channel,
      fulfillment_center: record.shipment.location,
      return_type: 'Regular',
      tracking_number: null,
      inventory: record.shipment.products.map((p) => ({
        id: state.inventory.find((item) => item.product_id === p.id)?.id ?? 0,
        quantity: p.quantity,
      })),
    };
    const rr = { ret, clientId: record.clientId };
    returns.set(id, rr);
    openReturns.push(rr);
    version++;
    emit(() => ({ topic: 'return.created', clientId: rr.clientId, payload: { ...ret, event_time: iso7(t) } }));
    return rr;
  }

  const RETURN_NEXT: Record<string, string> = {
    AwaitingArrival: 'Arrived',
    Arrived: 'Processing',
    Processing: 'Completed',
  };

  const RETURN_DATE: Record<string, 'arrived_date' | 'processing_date' | 'completed_date'> = {
    Arrived: 'arrived_date',
    Processing: 'processing_date',
    Completed: 'completed_date',
  };

  /** Moves a return one stage on; OA gives it no update time: the stage's date and status_history record the change. */
  function advanceReturn(rr: ReturnRecord, t: number): void {
    const { ret } = rr;
    const next = RETURN_NEXT[ret.status];
    if (!next) return;
    ret.status = next;
    ret[RETURN_DATE[next]] = iso(t);
    ret.status_history = [...ret.status_history, { status: next, timestamp: iso(t) }];
    version++;
    const completed = ret.status === 'Completed';
    emit(() => ({
      topic: completed ? 'return.completed' : 'return.updated',
      clientId: rr.clientId,
      payload: { ...ret, event_time: iso7(t) },
    }));
    if (completed) {
      addTransaction(rr.clientId, t, t, {
        amount: 3,
        reference_id: String(ret.id),
        reference_type: 'Return',
        transaction_fee: 'Return Processed by Operations Fee',
        invoice_type: 'Return',
      });
    }
  }

  // --- billing --------------------------------------------------------------------------------------------------

  function billingTopic(txn: Transaction): (typeof BillingTopics)[number] {
    if (txn.transaction_type === 'Refund') return 'billing.refund.created';
    if (txn.transaction_type === 'Credit') return 'billing.credit.created';
    return 'billing.charge.created';
  }

  function addTransaction(clientId: number, chargeMs: number, t: number, fields: NewTransaction): Transaction {
    const txn: Transaction = {
      transaction_id: transactionId(t),
      currency_code: 'USD',
      charge_date: iso(chargeMs),
      invoice_id: null,
      invoice_date: null,
      invoiced_status: false,
      transaction_type: 'Charge',
      fulfillment_center: null,
      taxes: [],
      additional_details: {},
      last_update_at: iso(t),
      ...fields,
    };
    const record = { txn, clientId };
    transactions.set(txn.transaction_id, record);
    uninvoiced.push(record);
    stateOf(clientId).transactions.push(txn);
    version++;
    emit(() => ({ topic: billingTopic(txn), clientId, payload: { ...txn, event_time: iso7(t) } }));
    return txn;
  }

  /** Invoices are weekly per client: every transaction invoiced in the same week shares one invoice id. */
  function invoice(record: TransactionRecord, t: number): void {
    const key = `${record.clientId}:${Math.floor(t / WEEK)}`;
    let invoiceId = invoiceIds.get(key);
    if (invoiceId === undefined) {
      invoiceId = 8_000_001 + invoiceIds.size;
      invoiceIds.set(key, invoiceId);
    }
    Object.assign(record.txn, {
      invoice_id: invoiceId,
      // Date-only, as seen in practice (OA gives the field no format).
      invoice_date: iso(t).slice(0, 10),
      invoiced_status: true,
      last_update_at: iso(t),
    });
    version++;
    const { txn, clientId } = record;
    emit(() => ({ topic: billingTopic(txn), clientId, payload: { ...txn, event_time: iso7(t) } }));
  }

  function storageCharge(state: ClientState, item: InventoryItem, t: number): void {
    const fc = FULFILLMENT_CENTERS.find((f) => f.id === item.fulfillment_center_id);
    addTransaction(state.client.id, t, t, {
      amount: money(0.5 + rng.next() * 5),
      reference_id: `${item.fulfillment_center_id}-${item.id}-${rng.pick(STORAGE_LOCATION_TYPES)}`,
      reference_type: 'FC',
      transaction_fee: 'Warehousing Fee',
      invoice_type: 'WarehouseStorage',
      fulfillment_center: fc?.name ?? null,
    });
  }

  /** Charges nothing attributes to a client: account adjustments, inbound receiving, support-ticket credits. */
  function otherCharge(state: ClientState, t: number): void {
    const kind = rng.int(0, 2);
    const fields: NewTransaction[] = [
      {
        amount: money(rng.next() * 20),
        reference_id: String(state.client.id),
        reference_type: 'Default',
        transaction_fee: 'Account Adjustment',
        invoice_type: 'AdditionalFee',
      },
      {
        amount: money(10 + rng.next() * 40),
        reference_id: String(rng.int(100_000, 999_999)),
        reference_type: 'WRO',
        transaction_fee: 'WRO Receiving Fee',
        invoice_type: 'Inbound Fee',
      },
      {
        amount: -money(1 + rng.next() * 15),
        reference_id: String(rng.int(10_000_000, 99_999_999)),
        reference_type: 'Ticket Number',
        transaction_fee: 'Courtesy Credit',
        invoice_type: 'Credits',
        transaction_type: 'Credit',
      },
    ];
    addTransaction(state.client.id, t, t, fields[kind]);
  }

  function refund(state: ClientState, t: number): boolean {
    for (let tries = 0; tries < 4 && state.transactions.length > 0; tries++) {
      const original = rng.pick(state.transactions);
      if (original.reference_type !== 'Shipment' || original.transaction_type !== 'Charge') continue;
      addTransaction(state.client.id, t, t, {
        amount: -original.amount,
        reference_id: original.reference_id,
        reference_type: 'Shipment',
        transaction_fee: original.transaction_fee,
        invoice_type: original.invoice_type,
        transaction_type: 'Refund',
        fulfillment_center: original.fulfillment_center,
      });
      return true;
    }
    return false;
  }

  function invoiceSomething(t: number): boolean {
    for (let tries = 0; tries < 4 && uninvoiced.length > 0; tries++) {
      const i = rng.int(0, uninvoiced.length - 1);
      if (Date.parse(uninvoiced[i].txn.charge_date) > t - DAY) continue;
      invoice(uninvoiced[i], t);
      takeAt(uninvoiced, i);
      return true;
    }
    return false;
  }

  // --- history --------------------------------------------------------------------------------------------------

  function gapAfter(record: ShipmentRecord): number {
    const status = record.shipment.status;
    if (status === 'LabeledCreated') return rng.int(1, 8) * HOUR;
    if (status !== 'Completed') return rng.int(2, 30) * HOUR;
    return lastLog(record) === TimelineLogTypes.outForDelivery ? rng.int(2, 10) * HOUR : rng.int(12, 72) * HOUR;
  }

  /** Lives a shipment (and maybe its return) from t until the world's start, announcing nothing. */
  function liveUntilStart(record: ShipmentRecord, t: number): void {
    let at = t;
    while (!isTerminal(record)) {
      at += gapAfter(record);
      if (at > start) return;
      advanceShipment(record, at);
    }
    if (record.shipment.delivery_date === null || !rng.chance(0.05)) return;
    at += rng.int(1, 5) * DAY;
    if (at > start) return;
    const rr = createReturn(record, at);
    for (at += DAY; at <= start && rr.ret.status !== 'Completed'; at += rng.int(1, 3) * DAY) advanceReturn(rr, at);
  }

  const historyMs = o.historyDays * DAY;
  for (const state of states) {
    for (let i = 0; i < o.ordersPerClient; i++) {
      const created = start - historyMs + Math.floor(rng.next() * (historyMs - HOUR));
      for (const s of createOrder(state, created).shipments) {
        liveUntilStart(shipments.get(s.id) as ShipmentRecord, created);
      }
    }
    for (let week = Math.ceil((start - historyMs) / WEEK) * WEEK; week <= start; week += WEEK) {
      for (const item of state.inventory) storageCharge(state, item, week);
    }
    for (let n = rng.int(2, 5); n > 0; n--) otherCharge(state, start - rng.int(1, historyMs));
  }
  // The weekly invoice run that followed each transaction's creation (not its charge date, which may be
  // back-dated), where that run has happened by now.
  for (const record of transactions.values()) {
    const run = (Math.floor(Date.parse(record.txn.last_update_at ?? record.txn.charge_date) / WEEK) + 1) * WEEK;
    if (run <= start) invoice(record, run);
  }
  const all = [...shipments.values()];
  active = all.filter((r) => !isTerminal(r));
  delivered = all.filter((r) => r.shipment.delivery_date !== null && !r.returned);
  openReturns = [...returns.values()].filter((r) => r.ret.status !== 'Completed');
  uninvoiced = [...transactions.values()].filter((r) => r.txn.invoiced_status === false);

  // --- step -----------------------------------------------------------------------------------------------------

  function update(t: number): void {
    if (rng.chance(0.1) && (openReturns.length > 0 || delivered.length > 0)) {
      if (openReturns.length > 0 && (delivered.length === 0 || rng.chance(0.5))) {
        const i = rng.int(0, openReturns.length - 1);
        const rr = openReturns[i];
        advanceReturn(rr, t);
        if (rr.ret.status === 'Completed') takeAt(openReturns, i);
      } else {
        const i = rng.int(0, delivered.length - 1);
        createReturn(delivered[i], t);
        takeAt(delivered, i);
      }
      return;
    }
    if (active.length === 0) {
      createOrder(rng.pick(states), t);
      return;
    }
    const i = rng.int(0, active.length - 1);
    const record = active[i];
    advanceShipment(record, t);
    if (!isTerminal(record)) return;
    takeAt(active, i);
    if (record.shipment.delivery_date !== null) delivered.push(record);
  }

  function billing(t: number): void {
    const r = rng.next();
    if (r < 0.6 && invoiceSomething(t)) return;
    const state = rng.pick(states);
    if (r < 0.75) storageCharge(state, rng.pick(state.inventory), t);
    else if (r < 0.85 && refund(state, t)) return;
    else otherCharge(state, t);
  }

  function step(options: StepOptions = {}): ChangeEvent[] {
    const { newOrders = 2, updates = 5, billing: billings = 2, durationMs = 1000 } = options;
    const kinds = [
      ...Array<'order'>(newOrders).fill('order'),
      ...Array<'update'>(updates).fill('update'),
      ...Array<'billing'>(billings).fill('billing'),
    ];
    rng.shuffle(kinds);
    const events: ChangeEvent[] = [];
    sink = events;
    const t0 = clock;
    let t = t0;
    kinds.forEach((kind, i) => {
      // Distinct, increasing times: two changes of one entity never share a timestamp.
      t = Math.max(t + 1, t0 + Math.floor(((i + 1) * durationMs) / (kinds.length + 1)));
      if (kind === 'order') createOrder(rng.pick(states), t);
      else if (kind === 'update') update(t);
      else billing(t);
    });
    sink = null;
    clock = Math.max(t0 + durationMs, t);
    return events;
  }

  // --- reads ----------------------------------------------------------------------------------------------------

  const sortedOrders = new Map<number, { version: number; list: Order[] }>();
  const sortedTransactions = new Map<number, { version: number; list: Transaction[] }>();

  function truth(): Truth {
    const attribute = (txn: Transaction): Pick<Truth['transactions'][number], 'client_id' | 'unattributed_reason'> => {
      let clientId: number | undefined;
      if (txn.reference_type === 'Shipment') clientId = shipments.get(Number(txn.reference_id))?.clientId;
      else if (txn.reference_type === 'Return') clientId = returns.get(Number(txn.reference_id))?.clientId;
      else if (txn.reference_type === 'FC') clientId = inventory.get(Number(txn.reference_id.split('-')[1]))?.client_id;
      else return { client_id: null, unattributed_reason: UnattributedReasons.notAttributable };
      return clientId === undefined
        ? { client_id: null, unattributed_reason: UnattributedReasons.unknownReference }
        : { client_id: clientId, unattributed_reason: null };
    };
    return {
      now: iso(clock),
      clients: states.map(({ client: { id, name, channel } }) => ({ id, name, channel })),
      orders: states.flatMap((st) =>
        st.orders.map(({ shipments: list, ...order }) => ({
          ...order,
          client_id: st.client.id,
          shipment_ids: list.map((s) => s.id),
        })),
      ),
      shipments: [...shipments.values()].map((r) => ({ ...r.shipment, client_id: r.clientId })),
      returns: [...returns.values()].map((r) => ({ ...r.ret, client_id: r.clientId })),
      inventory: [...inventory.values()].map((item) => ({ ...item })),
      transactions: [...transactions.values()].map((r) => ({
        ...r.txn,
        source_client_id: r.clientId,
        ...attribute(r.txn),
      })),
    };
  }

  return {
    clients: states.map((s) => s.client),
    now: () => clock,
    advance(ms) {
      clock += ms;
    },
    step,
    truth,
    size: () => ({
      orders: states.reduce((n, s) => n + s.orders.length, 0),
      shipments: shipments.size,
      returns: returns.size,
      transactions: transactions.size,
      inventory: inventory.size,
    }),
    clientByToken: (token) => byToken.get(token)?.client,
    ordersByLastUpdate(clientId) {
      const cached = sortedOrders.get(clientId);
      if (cached?.version === version) return cached.list;
      const list = stateOf(clientId).orders.slice();
      list.sort((a, b) => compareBy(a.last_update_at ?? '', b.last_update_at ?? '') || a.id - b.id);
      sortedOrders.set(clientId, { version, list });
      return list;
    },
    transactionsByChargeDate(clientId) {
      const cached = sortedTransactions.get(clientId);
      if (cached?.version === version) return cached.list;
      const list = stateOf(clientId).transactions.slice();
      list.sort((a, b) => compareBy(a.charge_date, b.charge_date) || compareBy(a.transaction_id, b.transaction_id));
      sortedTransactions.set(clientId, { version, list });
      return list;
    },
    shipment(clientId, id) {
      const record = shipments.get(id);
      return record?.clientId === clientId ? record.shipment : undefined;
    },
    timeline(clientId, shipmentId) {
      const record = shipments.get(shipmentId);
      if (record?.clientId !== clientId) return undefined;
      const tracking = record.shipment.tracking;
      const entries: TimelineEntry[] = [];
      for (let i = 0; i < record.timeline.length; i += 2) {
        const id = record.timeline[i];
        const onTheRoad = id >= TimelineLogTypes.inTransit;
        entries.push({
          log_type_id: id,
          log_type_name: TIMELINE_WORDING[id].name,
          log_type_text: TIMELINE_WORDING[id].text,
          metadata:
            onTheRoad && tracking ? { carrier: tracking.carrier, tracking_number: tracking.tracking_number } : null,
          timestamp: iso(record.timeline[i + 1]),
        });
      }
      return entries;
    },
    returnsOf(clientId) {
      return [...returns.values()].filter((r) => r.clientId === clientId).map((r) => r.ret);
    },
    order(clientId, id) {
      const record = ordersById.get(id);
      return record?.clientId === clientId ? record.order : undefined;
    },
    returnById(clientId, id) {
      const record = returns.get(id);
      return record?.clientId === clientId ? record.ret : undefined;
    },
    subscriptions: (clientId) => stateOf(clientId).subscriptions,
    subscribe(clientId, input) {
      const state = stateOf(clientId);
      const subscription: Subscription = {
        id: subscriptionId++,
        secret: input.secret ?? state.client.secret,
        topics: [...input.topics],
        url: input.url,
        description: input.description ?? null,
        created_at: iso(clock),
        enabled: true,
      };
      state.subscriptions.push(subscription);
      return subscription;
    },
    unsubscribe(clientId, id) {
      const list = stateOf(clientId).subscriptions;
      const i = list.findIndex((s) => s.id === id);
      if (i < 0) return false;
      list.splice(i, 1);
      return true;
    },
    setSubscriptionEnabled(subscriptionId, enabled) {
      for (const state of states) {
        for (const s of state.subscriptions) if (s.id === subscriptionId) s.enabled = enabled;
      }
    },
  };
}

const compareBy = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
