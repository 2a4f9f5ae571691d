/**
 * The provider's (ShipBob, API 2026-01) resource shapes and webhook topics, as docs/provider.md describes them (with sources).
 * The simulator serves and sends exactly these; the drain reads them defensively (fields may be missing or moved).
 *
 * Webhook payloads the simulator sends (ShipBob publishes no per-topic schema, so this is our reading):
 * - `order.shipped`, `order.delivered`: the Order resource (with its shipments[]) plus `event_time`.
 * - `order.shipment.*`: the Shipment resource (with `order_id`) plus `event_time`.
 * - `return.*`: the Return resource plus `event_time`.
 * - `billing.*`: the Transaction item plus `event_time`.
 * `event_time` is ISO-8601 UTC with 7 fractional digits, as in the provider's one official example.
 */

export const API_VERSION = '2026-01';

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
 * - `poll.return`: a Return from GET /return/{id} (the provider lists no returns: fetched by id for charges on them).
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
  invoiced_status: 'Invoiced' | 'NotInvoiced';
  reference_id: string;
  /** Free text in practice: Shipment, Return, FC, WRO, URO, Default, TicketNumber, … */
  reference_type: string;
  transaction_fee: string;
  transaction_type: string;
  fulfillment_center: string | null;
  taxes: { tax_type: string; tax_rate: number; tax_amount: number }[];
  additional_details: Record<string, unknown>;
  /** Not documented; the simulator sends it (creation, or invoicing) so versions of one transaction can be ordered. */
  last_update_at?: string;
}

export interface Return {
  id: number;
  reference_id: string;
  status: string;
  original_shipment_id: number | null;
  order_id: number | null;
  created_date: string;
  last_update_at: string;
  inventory: { id: number; quantity: number }[];
}

/** Body of POST /transactions:query. */
export interface TransactionQuery {
  from_date?: string;
  to_date?: string;
  page_size?: number;
  reference_types?: string[];
  transaction_types?: string[];
  invoiced_status?: string;
  sort_order?: 'Ascending' | 'Descending';
}
export interface TransactionPage {
  items: Transaction[];
  first: string | null;
  last: string | null;
  next: string | null;
  prev: string | null;
}
