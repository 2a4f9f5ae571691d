/**
 * The provider's (ShipBob, API 2026-01) resource shapes and webhook topics, from its OpenAPI (docs/provider.md).
 * The simulator serves and sends exactly these; the drain reads them defensively (fields may be missing or moved).
 *
 * Webhook payloads (ShipBob publishes no per-topic schema; docs/provider.md §2 lists what each topic may carry):
 * - `order.shipped`, `order.delivered`: the Order resource (with its shipments[]), or a Shipment ("fires per shipment"),
 *   plus `event_time`.
 * - `order.shipment.*`: the Shipment resource (with `order_id`), or an order-centric event (`order_id`, `status`,
 *   `tracking{…tracking_id…}`, no shipment id: the shape of the one official example), plus `event_time`.
 * - `return.*`: the Return resource plus `event_time`.
 * - `billing.*`: the Transaction item plus `event_time`.
 * `event_time` is ISO-8601 UTC with 7 fractional digits, as in the provider's one official example.
 */

export const API_VERSION = '2026-01';

/** OA `Webhooks.Topics` for 2026-01: exactly what a 2026-01 subscription accepts (docs/provider.md §2). */
export const SubscribableTopics = [
  'order.shipped',
  'order.shipment.delivered',
  'order.shipment.exception',
  'order.shipment.on_hold',
  'order.shipment.cancelled',
  'return.created',
  'return.updated',
  'return.completed',
  'billing.charge.created',
  'billing.refund.created',
  'billing.credit.created',
] as const;

/** OA `Webhooks.V2.WebhookViewModelV2` (GET /webhook items; the secret is never listed). */
export interface WebhookSubscription {
  id: string;
  created_at: string;
  description: string | null;
  enabled: boolean;
  topics: string[];
  url: string;
}

/** OA `Webhooks.V2.Create.WebhookViewModelV2` (POST /webhook, 200): the only answer that carries the secret. */
export interface CreatedWebhookSubscription {
  id: string;
  created_at: string;
  description: string | null;
  secret: string;
  topics: string[];
  url: string;
}

export const ShipmentTopics = [
  'order.shipment.delivered',
  'order.shipment.exception',
  'order.shipment.on_hold',
  'order.shipment.cancelled',
  'order.shipment.tracking.updated',
  'order.shipment.address.updated',
  'order.shipment.line_item.added',
  'order.shipment.line_item.removed',
  'order.shipment.line_item.updated',
  'order.shipment.shipping_service.updated',
] as const;
export const OrderTopics = ['order.shipped', 'order.delivered'] as const;
export const ReturnTopics = ['return.created', 'return.updated', 'return.completed'] as const;
export const BillingTopics = ['billing.charge.created', 'billing.refund.created', 'billing.credit.created'] as const;

/**
 * Topics the poller writes into the inbox (`via = 'poll'`), so polled data takes the same path as webhooks.
 * Event ids are deterministic (`poll:<kind>:<id>:<version>`), so polling the same state twice stores it once.
 * - `poll.order`: an Order (with shipments[]) from GET /order.
 * - `poll.transaction`: a Transaction from POST /transactions:query.
 * - `poll.shipment.timeline`: `{ shipment_id, order_id?, fetched_at, timeline: TimelineEntry[] }`.
 * - `poll.return`: a Return from GET /return (open and recently completed ones) or GET /return/{id}.
 * - `poll.resolved.order|shipment|return`: a resource fetched by id because a delivery named it without standing for it.
 */
export const OrderStatuses = [
  'Processing',
  'Exception',
  'PartiallyFulfilled',
  'Fulfilled',
  'Cancelled',
  'ImportReview',
] as const;
/** Sic: "LabeledCreated" is the provider's spelling. */
export const ShipmentStatuses = [
  'None',
  'Processing',
  'Completed',
  'Exception',
  'OnHold',
  'Cancelled',
  'CleanSweeped',
  'LabeledCreated',
  'ImportReview',
] as const;

export const TimelineLogTypes = {
  created: 601,
  picked: 602,
  packed: 603,
  labeled: 604,
  labelValidated: 605,
  inTransit: 607,
  outForDelivery: 608,
  delivered: 609,
  deliveryAttemptFailed: 611,
} as const;

export interface Tracking {
  carrier: string | null;
  carrier_service: string | null;
  tracking_number: string | null;
  tracking_url: string | null;
  shipping_date: string | null;
}

export interface Shipment {
  id: number;
  order_id: number;
  reference_id: string;
  status: (typeof ShipmentStatuses)[number];
  status_details: { name: string; description: string }[];
  created_date: string;
  last_update_at: string;
  last_tracking_update_at: string | null;
  actual_fulfillment_date: string | null;
  delivery_date: string | null;
  tracking: Tracking | null;
  location: { id: number; name: string } | null;
  invoice_amount: number | null;
  invoice_currency_code: string | null;
  products: { id: number; reference_id: string; quantity: number }[];
  recipient: { name: string; address: Record<string, string> } | null;
}

export interface Order {
  id: number;
  reference_id: string;
  order_number: string;
  status: (typeof OrderStatuses)[number];
  created_date: string;
  purchase_date: string | null;
  /** Not in the documented list but present in practice; the simulator always sends it. */
  last_update_at?: string;
  channel: { id: number; name: string };
  shipments: Shipment[];
  products: { id: number; reference_id: string; quantity: number }[];
  recipient: { name: string; address: Record<string, string> } | null;
  financials: { total_price: number } | null;
  tags: { name: string; value: string }[];
  type: string;
  shipping_method: string;
}

export interface TimelineEntry {
  log_type_id: number;
  log_type_name: string;
  log_type_text: string;
  metadata: Record<string, unknown> | null;
  timestamp: string;
}

export interface Transaction {
  transaction_id: string;
  amount: number;
  currency_code: string;
  charge_date: string;
  invoice_id: number | null;
  invoice_date: string | null;
  invoice_type: string | null;
  /** OA: boolean|null (true billed, false not yet). */
  invoiced_status: boolean | null;
  reference_id: string;
  /** OA enum: Shipment, Return, WRO, URO, Ticket Number, FC, LPN Reference, Transfer Plan (Default, TicketNumber seen in practice). */
  reference_type: string;
  transaction_fee: string;
  transaction_type: string;
  fulfillment_center: string | null;
  taxes: { tax_type: string; tax_rate: number; tax_amount: number }[];
  additional_details: Record<string, unknown>;
  /** Not documented; the simulator sends it (creation, or invoicing) so versions of one transaction can be ordered. */
  last_update_at?: string;
}

/** OA `Returns.PublicReturnDto` (the fields wharf or the simulator use; the rest pass through in `data`). */
export interface Return {
  id: number;
  reference_id: string | null;
  /** Free string in OA ("i.e. Awaiting Arrival"); the list filter spells AwaitingArrival, Arrived, Processing, Completed, Cancelled. */
  status: string;
  original_shipment_id: number | null;
  /** Creation. OA has no update time for a return: its dated fields and status_history are the only clock. */
  insert_date: string;
  awaiting_arrival_date: string | null;
  arrived_date: string | null;
  processing_date: string | null;
  completed_date: string | null;
  cancelled_date: string | null;
  status_history: { status: string; timestamp: string }[];
  channel: { id: number; name: string } | null;
  fulfillment_center: { id: number; name: string } | null;
  return_type: string | null;
  tracking_number: string | null;
  inventory: { id: number; quantity: number }[];
}

/**
 * An item of GET /2026-01/inventory (OA `Inventory.InventoryResponse`; only what wharf reads). No channel or client
 * field: the client comes from the source (or an operator's choice), docs/provider.md 1.4.
 */
export interface InventoryItem {
  inventory_id: number;
  name?: string | null;
  sku?: string | null;
}

/** GET /return: OA `Returns.PublicReturnDtoPagedUrlResultDto` (first/next/last/prev are URLs; `Cursor` is a page number). */
export interface ReturnPage {
  items: Return[];
  first: string | null;
  next: string | null;
  last: string | null;
  prev: string | null;
}

/** Body of POST /transactions:query. */
export interface TransactionQuery {
  from_date?: string;
  to_date?: string;
  page_size?: number;
  reference_types?: string[];
  transaction_types?: string[];
  invoiced_status?: boolean | null;
  sort_order?: 'Ascending' | 'Descending';
}
export interface TransactionPage {
  items: Transaction[];
  first: string | null;
  last: string | null;
  next: string | null;
  prev: string | null;
}
