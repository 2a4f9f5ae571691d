import type { Queryable } from '../db/client.js';
import type { ShipmentInput } from './collapse.js';
import type { OrderRow, ReturnRow, TimelineRow, TransactionRow } from './normalise.js';
import { isoFromMicros } from '../time.js';

/**
 * One statement per table for a whole chunk (orders and shipments share one): `INSERT … SELECT FROM unnest(…) ORDER BY
 * key ON CONFLICT DO UPDATE … WHERE the incoming version is newer`. Callers pass rows already collapsed to one per key (collapse.ts), inside the
 * transaction that claimed their inbox rows: a row's stored document (`data`) is read from the body of the inbox row
 * of its version (`event_inbox_id`, at its DataPath), not sent back from JavaScript.
 *
 * Guarantees, for each upsert: idempotent (replaying a version changes nothing); an older version never replaces a
 * newer one (versions are `(event_time, event_inbox_id)`); rows are locked in key order, so concurrent chunks never
 * deadlock on one table. Each also reports, per row it wrote, whether its version is strictly newer than the one the
 * database held when the statement began (`newer`): a poll event that is newer is a "poll catch". The held row is read
 * by joining the table itself after the insert: every part of one statement sees the snapshot taken when it began, so
 * that join sees the rows as they were (by index, per written row; a join with the unnest CTE was planned as a nested
 * loop rescanning it, quadratic in the chunk). Two drains racing on one row may both count it: the catch counter is an
 * approximation.
 *
 * Values travel as arrays cast per element (`::text[]` then `::jsonb`): a JS string bound as jsonb would be stored as
 * a JSON string.
 *
 * Ownership (docs/tenancy.md): the source that stored a row first owns it. On a conflict with a row another source
 * owns, the statement refuses the incoming version and still "updates" the row to itself (every column keeps its
 * value): that takes the row lock and re-reads the latest committed row, as any conflict does, and makes RETURNING
 * report the row with its owner's `source_id`, so the caller sees every refusal exactly, concurrent chunks included.
 * Such a no-op write happens only for refused rows (an attack or a misconfiguration). `source_id` never changes.
 * Reads across entities (an order's channel for a shipment's client, a return's shipment, a charge's reference)
 * follow the same rule: only the same source's rows are looked at.
 */
const iso = (us: number | null) => (us === null ? null : isoFromMicros(us));

export interface WrittenRow {
  id: string;
  newer: boolean;
  /** The row's owner after the statement: another source than the incoming version's means refused (nothing changed). */
  source_id: string;
}

export interface WrittenOrderOrShipment extends WrittenRow {
  kind: 'order' | 'shipment';
  /** A shipment that now has a client and had none (or did not exist) before: pending charges may now attribute. */
  attributable: boolean;
  /** A shipment whose delivered_at this statement set. */
  delivered: boolean;
}

const SHIPMENT_VERSION_COLUMNS = [
  'reference_id',
  'status',
  'tracking_carrier',
  'tracking_number',
  'tracking_url',
  'created_date',
  'last_update_at',
  'last_tracking_update_at',
  'actual_fulfillment_date',
  'delivery_date',
  'data',
  'event_time',
  'event_inbox_id',
] as const;
const SHIPMENT_NEWER = '(excluded.event_time, excluded.event_inbox_id) > (s.event_time, s.event_inbox_id)';
const SHIPMENT_OWN = 's.source_id = excluded.source_id';
// Static text (no input): the versioned columns take the incoming value only when its version is newer, because a
// row may also be written for its delivery or its client alone.
const SHIPMENT_SET_VERSIONED = SHIPMENT_VERSION_COLUMNS.map(
  (col) => `${col} = case when ${SHIPMENT_OWN} and ${SHIPMENT_NEWER} then excluded.${col} else s.${col} end`,
).join(', ');

/**
 * `SET` of a table whose update happens only when the incoming version is newer *or* the row belongs to another
 * source: each column takes the incoming value only when the row is the incoming source's (static text, no input).
 */
function setOwned(alias: string, columns: readonly string[]): string {
  return columns.map((col) => `${col} = case when ${alias}.source_id = excluded.source_id then excluded.${col} else ${alias}.${col} end`).join(', ');
}
const ORDER_COLUMNS = ['client_id', 'reference_id', 'order_number', 'status', 'channel_id', 'channel_name', 'created_date',
  'purchase_date', 'last_update_at', 'data', 'event_time', 'event_inbox_id'] as const;
const ORDER_NEWER = '(excluded.event_time, excluded.event_inbox_id) > (o.event_time, o.event_inbox_id)';
const ORDER_OWN = 'o.source_id = excluded.source_id';
// The versioned columns take the incoming value only when its version is newer: an older version may still write the
// row for its shipment count alone. shipment_count is the most shipments any version listed (provider lists only
// grow: a shipment, cancelled too, stays on its order), so it is the same whatever order versions arrive in, and a
// version listing none (null: a webhook body may omit them) changes nothing. Static text (no input).
const ORDER_SET = [
  ...ORDER_COLUMNS.map((col) => `${col} = case when ${ORDER_OWN} and ${ORDER_NEWER} then excluded.${col} else o.${col} end`),
  `shipment_count = case when ${ORDER_OWN} then greatest(o.shipment_count, excluded.shipment_count) else o.shipment_count end`,
].join(', ');
const RETURN_SET = setOwned('r', ['reference_id', 'status', 'original_shipment_id', 'order_id', 'data', 'event_time', 'event_inbox_id']);
const TRANSACTION_SET = setOwned('t', ['amount', 'currency_code', 'charge_date', 'invoice_id', 'invoice_date', 'invoice_type',
  'invoiced_status', 'reference_id', 'reference_type', 'transaction_fee', 'transaction_type', 'fulfillment_center', 'taxes',
  'additional_details', 'event_time', 'event_inbox_id']);

/**
 * Orders and shipments in one statement, so that each claimed body is parsed once (an order's body holds its
 * shipments: two statements parsed it twice, ~4 ms of PostgreSQL per chunk of 500).
 *
 * Orders: the client is the order's channel mapped through channel_clients, else its source's client. `data` is the
 * order as its inbox row carried it, without its shipments (they have their table); `shipment_count` the most
 * shipments any of its versions listed (the reconciliation counts an order complete when that many shipment rows are
 * held, whichever of the order and its shipments landed first): an older version arriving late still raises it.
 *
 * Shipments, with their delivery (`delivered_at`, set once, from delivery_date, a delivered topic or a timeline's
 * 609) folded in so that a chunk locks each shipment row once, in id order. The client: the channel (the enclosing
 * order's, else the order as it stands after this statement: this chunk's version when it is newer than the stored
 * one, else the stored one) mapped through channel_clients, else the source's client; a known client is never replaced
 * by null, and a row without one gets it from any later event. A delivery for a shipment not stored yet is dropped
 * here (its timeline entries are still stored); the shipment's own delivery_date sets it when the shipment lands.
 * A shipment's order_id, like its client, is never replaced by null and is taken from any version when the row has
 * none (a newer version naming no order may land first): a shipment never changes order, and the reconciliation counts
 * an order's shipments by it.
 *
 * Lock order: the main query reads the orders insert (`uo`) before the shipments insert (`us`) and each inserts in
 * key order, so orders are locked before shipments, as the other statements of a chunk lock their tables after both.
 */
export function upsertOrdersAndShipments(sql: Queryable, orders: readonly OrderRow[], shipments: readonly ShipmentInput[]) {
  const o = <T>(f: (r: OrderRow) => T) => orders.map(f);
  const c = <T>(f: (r: ShipmentInput) => T) => shipments.map(f);
  const v = <T>(f: (r: NonNullable<ShipmentInput['version']>) => T) => shipments.map((r) => (r.version ? f(r.version) : null));
  // This chunk's version of each shipment's order, for the channel when the shipment did not come inside it.
  const orderById = new Map(orders.map((r) => [r.id, r]));
  const chunkOrder = <T>(f: (r: OrderRow) => T) =>
    shipments.map((r) => {
      const order = r.version?.orderId == null ? undefined : orderById.get(r.version.orderId);
      return order ? f(order) : null;
    });
  return sql<WrittenOrderOrShipment[]>`
    with xo as (
      select * from unnest(${o((r) => r.id)}::bigint[], ${o((r) => r.sourceId)}::text[],
        ${o((r) => r.referenceId)}::text[], ${o((r) => r.orderNumber)}::text[], ${o((r) => r.status)}::text[],
        ${o((r) => r.channelId)}::bigint[], ${o((r) => r.channelName)}::text[],
        ${o((r) => r.createdDate)}::text[]::timestamptz[], ${o((r) => r.purchaseDate)}::text[]::timestamptz[],
        ${o((r) => r.lastUpdateAt)}::text[]::timestamptz[], ${o((r) => r.dataPath)}::text[],
        ${o((r) => iso(r.eventUs))}::text[]::timestamptz[], ${o((r) => r.inboxId)}::bigint[],
        ${o((r) => r.shipmentCount)}::int[])
        as x(id, source_id, reference_id, order_number, status, channel_id, channel_name, created_date, purchase_date,
             last_update_at, data_path, event_time, event_inbox_id, shipment_count)
    ), xs as (
      select * from unnest(${c((r) => r.id)}::bigint[], ${c((r) => (r.version ? 't' : 'f'))}::text[]::bool[],
        ${v((r) => r.orderId)}::bigint[], ${c((r) => r.sourceId)}::text[], ${v((r) => r.channelId)}::bigint[],
        ${v((r) => r.referenceId)}::text[], ${v((r) => r.status)}::text[], ${v((r) => r.trackingCarrier)}::text[],
        ${v((r) => r.trackingNumber)}::text[], ${v((r) => r.trackingUrl)}::text[],
        ${v((r) => r.createdDate)}::text[]::timestamptz[], ${v((r) => r.lastUpdateAt)}::text[]::timestamptz[],
        ${v((r) => r.lastTrackingUpdateAt)}::text[]::timestamptz[], ${v((r) => r.actualFulfillmentDate)}::text[]::timestamptz[],
        ${v((r) => r.deliveryDate)}::text[]::timestamptz[], ${c((r) => iso(r.deliveredUs))}::text[]::timestamptz[],
        ${v((r) => r.dataPath)}::text[], ${c((r) => (r.version ? iso(r.version.eventUs) : '-infinity'))}::text[]::timestamptz[],
        ${c((r) => r.version?.inboxId ?? 0)}::bigint[], ${chunkOrder((r) => r.channelId)}::bigint[],
        ${chunkOrder((r) => iso(r.eventUs))}::text[]::timestamptz[], ${chunkOrder((r) => r.inboxId)}::bigint[])
        as x(id, has_version, order_id, source_id, channel_id, reference_id, status, tracking_carrier, tracking_number,
             tracking_url, created_date, last_update_at, last_tracking_update_at, actual_fulfillment_date,
             delivery_date, delivered_at, data_path, event_time, event_inbox_id, order_channel_id, order_event_time,
             order_event_inbox_id)
    ), bodies as materialized (
      -- Each claimed body parsed once, for its order and however many of the order's shipments the chunk writes.
      select ie.id, ie.body::jsonb as j from inbox_events ie
       where ie.id in (select event_inbox_id from xo union all select event_inbox_id from xs)
    ), uo as (
      insert into orders as o (id, source_id, client_id, reference_id, order_number, status, channel_id, channel_name,
                               created_date, purchase_date, last_update_at, data, event_time, event_inbox_id,
                               shipment_count)
      select xo.id, xo.source_id, coalesce(cc.client_id, src.client_id), xo.reference_id, xo.order_number, xo.status,
             xo.channel_id, xo.channel_name, xo.created_date, xo.purchase_date, xo.last_update_at,
             (b.j #> xo.data_path::text[]) - 'shipments', xo.event_time, xo.event_inbox_id, xo.shipment_count
        from xo
        join bodies b on b.id = xo.event_inbox_id
        left join sources src on src.id = xo.source_id
        left join channel_clients cc on cc.source_id = xo.source_id and cc.channel_id = xo.channel_id
       order by xo.id
      on conflict (id) do update set
        ${sql.unsafe(ORDER_SET)},
        updated_at = case when o.source_id = excluded.source_id then now() else o.updated_at end
      where o.source_id <> excluded.source_id
         or ${sql.unsafe(ORDER_NEWER)}
         or excluded.shipment_count > coalesce(o.shipment_count, -1)
      returning o.id, o.event_time, o.source_id
    ), us as (
      insert into shipments as s (id, order_id, source_id, client_id, reference_id, status, tracking_carrier,
                                  tracking_number, tracking_url, created_date, last_update_at, last_tracking_update_at,
                                  actual_fulfillment_date, delivery_date, delivered_at, data, event_time,
                                  event_inbox_id)
      select xs.id, xs.order_id, xs.source_id, coalesce(cc.client_id, src.client_id), xs.reference_id, xs.status,
             xs.tracking_carrier, xs.tracking_number, xs.tracking_url, xs.created_date, xs.last_update_at,
             xs.last_tracking_update_at, xs.actual_fulfillment_date, xs.delivery_date, xs.delivered_at,
             b.j #> xs.data_path::text[], xs.event_time, xs.event_inbox_id
        from xs
        left join bodies b on b.id = xs.event_inbox_id
        left join orders so on so.id = xs.order_id and so.source_id = xs.source_id
        left join sources src on src.id = xs.source_id
        left join channel_clients cc on cc.source_id = xs.source_id and cc.channel_id = coalesce(
          xs.channel_id,
          case when so.id is null or (xs.order_event_time, xs.order_event_inbox_id) > (so.event_time, so.event_inbox_id)
               then xs.order_channel_id end,
          so.channel_id)
       where xs.has_version or exists (select 1 from shipments e where e.id = xs.id)
       order by xs.id
      on conflict (id) do update set
        ${sql.unsafe(SHIPMENT_SET_VERSIONED)},
        order_id = case when ${sql.unsafe(SHIPMENT_OWN)}
                        then coalesce(case when ${sql.unsafe(SHIPMENT_NEWER)} then excluded.order_id end, s.order_id, excluded.order_id)
                        else s.order_id end,
        client_id = case when ${sql.unsafe(SHIPMENT_OWN)}
                         then coalesce(case when ${sql.unsafe(SHIPMENT_NEWER)} then excluded.client_id end, s.client_id, excluded.client_id)
                         else s.client_id end,
        delivered_at = case when ${sql.unsafe(SHIPMENT_OWN)} then coalesce(s.delivered_at, excluded.delivered_at) else s.delivered_at end,
        updated_at = case when ${sql.unsafe(SHIPMENT_OWN)} then now() else s.updated_at end
      where s.source_id <> excluded.source_id
         or ${sql.unsafe(SHIPMENT_NEWER)}
         or (s.client_id is null and excluded.client_id is not null)
         or (s.order_id is null and excluded.order_id is not null)
         or (s.delivered_at is null and excluded.delivered_at is not null)
      returning s.id, s.event_time, s.client_id, s.delivered_at, s.source_id
    )
    select 'order' as kind, uo.id::text, (p.id is null or uo.event_time > p.event_time) as newer,
           false as attributable, false as delivered, uo.source_id
      from uo left join orders p on p.id = uo.id
    union all
    select 'shipment', us.id::text,
           (p.id is null or us.event_time > p.event_time),
           (us.client_id is not null and (p.id is null or p.client_id is null)),
           (us.delivered_at is not null and (p.id is null or p.delivered_at is null)),
           us.source_id
      from us left join shipments p on p.id = us.id`;
}

/**
 * Timeline entries are facts keyed by (shipment, log type, timestamp): inserted once, never changed. An entry for a
 * shipment another source owns is refused; the statement's rows are those refusals (shipment and incoming source),
 * as the shipments table stood when it began (the chunk's own shipments statement included). Entries of a shipment
 * not stored yet are kept (the poller only asks for stored shipments; webhooks carry no timelines).
 */
export function insertTimelineEntries(sql: Queryable, rows: readonly TimelineRow[]) {
  const c = <T>(f: (r: TimelineRow) => T) => rows.map(f);
  return sql<{ shipment_id: string; source_id: string }[]>`
    with x as (
      select x.*, sh.source_id as owner
        from unnest(${c((r) => r.shipmentId)}::bigint[], ${c((r) => r.sourceId)}::text[], ${c((r) => r.logTypeId)}::int[],
                    ${c((r) => r.timestamp)}::text[]::timestamptz[], ${c((r) => r.logTypeName)}::text[],
                    ${c((r) => r.logTypeText)}::text[], ${c((r) => r.metadata)}::text[])
             as x(shipment_id, source_id, log_type_id, ts, log_type_name, log_type_text, metadata)
        left join shipments sh on sh.id = x.shipment_id
    ), ins as (
      insert into shipment_timeline (shipment_id, log_type_id, timestamp, log_type_name, log_type_text, metadata)
      select x.shipment_id, x.log_type_id, x.ts, x.log_type_name, x.log_type_text, x.metadata::jsonb
        from x
       where x.owner is null or x.owner = x.source_id
       order by 1, 2, 3
      on conflict do nothing
    )
    select distinct shipment_id::text, source_id from x where x.owner <> x.source_id`;
}

export interface WrittenReturn extends WrittenRow {
  attributable: boolean;
}

/**
 * Returns; the client is the return's channel mapped through channel_clients, else the original shipment's, else the
 * source's; the order, when the return does not say (OA's return has no order_id), is the original shipment's. A
 * version replaces the stored one only when it is not earlier in the life cycle (wharf_return_status_rank: OA gives a
 * return no update time, so a late delivery of an older status must not win on its time alone), then when newer.
 */
export function upsertReturns(sql: Queryable, rows: readonly ReturnRow[]) {
  const c = <T>(f: (r: ReturnRow) => T) => rows.map(f);
  return sql<WrittenReturn[]>`
    with x as (
      select * from unnest(${c((r) => r.id)}::bigint[], ${c((r) => r.sourceId)}::text[],
        ${c((r) => r.referenceId)}::text[], ${c((r) => r.status)}::text[], ${c((r) => r.originalShipmentId)}::bigint[],
        ${c((r) => r.orderId)}::bigint[], ${c((r) => r.dataPath)}::text[], ${c((r) => iso(r.eventUs))}::text[]::timestamptz[],
        ${c((r) => r.inboxId)}::bigint[], ${c((r) => r.channelId)}::bigint[])
        as x(id, source_id, reference_id, status, original_shipment_id, order_id, data_path, event_time, event_inbox_id,
             channel_id)
    ), up as (
      insert into returns as r (id, source_id, client_id, reference_id, status, original_shipment_id, order_id, data,
                                event_time, event_inbox_id)
      select x.id, x.source_id, coalesce(cc.client_id, sh.client_id, src.client_id), x.reference_id, x.status,
             x.original_shipment_id, coalesce(x.order_id, sh.order_id), ie.body::jsonb #> x.data_path::text[],
             x.event_time, x.event_inbox_id
        from x
        join inbox_events ie on ie.id = x.event_inbox_id
        left join shipments sh on sh.id = x.original_shipment_id and sh.source_id = x.source_id
        left join sources src on src.id = x.source_id
        left join channel_clients cc on cc.source_id = x.source_id and cc.channel_id = x.channel_id
       order by x.id
      on conflict (id) do update set
        ${sql.unsafe(RETURN_SET)},
        client_id = case when r.source_id = excluded.source_id then coalesce(excluded.client_id, r.client_id) else r.client_id end,
        updated_at = case when r.source_id = excluded.source_id then now() else r.updated_at end
      where r.source_id <> excluded.source_id
         or (wharf_return_status_rank(excluded.status), excluded.event_time, excluded.event_inbox_id)
          > (wharf_return_status_rank(r.status), r.event_time, r.event_inbox_id)
      returning r.id, r.event_time, r.client_id, r.source_id
    )
    select up.id::text, (p.id is null or up.event_time > p.event_time) as newer,
           (up.client_id is not null and (p.id is null or p.client_id is null)) as attributable, up.source_id
      from up left join returns p on p.id = up.id`;
}

export interface WrittenTransaction extends WrittenRow {
  attribution_status: string;
}

/**
 * Billing transactions, attributed in the same statement from what is stored when it runs (this chunk's shipments and
 * returns included): `Shipment` → the shipment's client, `Return` → the return's, `FC` → the inventory item's.
 * An unknown shipment or return leaves it `pending` (caught up when that lands: attribution.ts); an unknown inventory
 * item, another reference type or an unreadable id makes it `unattributable`, with the reason.
 */
export function upsertTransactions(sql: Queryable, rows: readonly TransactionRow[]) {
  const c = <T>(f: (r: TransactionRow) => T) => rows.map(f);
  return sql<WrittenTransaction[]>`
    with x as (
      select * from unnest(${c((r) => r.transactionId)}::text[], ${c((r) => r.sourceId)}::text[],
        ${c((r) => r.amount)}::text[]::numeric[], ${c((r) => r.currencyCode)}::text[], ${c((r) => r.chargeDate)}::text[]::timestamptz[],
        ${c((r) => r.invoiceId)}::bigint[], ${c((r) => r.invoiceDate)}::text[]::timestamptz[],
        ${c((r) => r.invoiceType)}::text[], ${c((r) => (r.invoicedStatus === null ? null : String(r.invoicedStatus)))}::text[]::bool[],
        ${c((r) => r.referenceId)}::text[],
        ${c((r) => r.referenceType)}::text[], ${c((r) => r.transactionFee)}::text[],
        ${c((r) => r.transactionType)}::text[], ${c((r) => r.fulfillmentCenter)}::text[], ${c((r) => r.taxes)}::text[],
        ${c((r) => r.additionalDetails)}::text[], ${c((r) => r.refKind)}::text[], ${c((r) => r.refKey)}::bigint[],
        ${c((r) => iso(r.eventUs))}::text[]::timestamptz[], ${c((r) => r.inboxId)}::bigint[])
        as x(transaction_id, source_id, amount, currency_code, charge_date, invoice_id, invoice_date, invoice_type,
             invoiced_status, reference_id, reference_type, transaction_fee, transaction_type, fulfillment_center,
             taxes, additional_details, ref_kind, ref_key, event_time, event_inbox_id)
    ), attributed as (
      select x.*, coalesce(sh.client_id, rt.client_id, inv.client_id) as client_id,
             case when x.ref_kind is null or x.ref_kind = 'invalid' then 'unattributable'
                  when coalesce(sh.client_id, rt.client_id, inv.client_id) is not null then 'attributed'
                  when x.ref_kind = 'fc' then 'unattributable'
                  else 'pending' end as attribution_status,
             case when x.ref_kind is null then 'reference_type_not_attributable'
                  when x.ref_kind = 'invalid' then 'reference_id_invalid'
                  when coalesce(sh.client_id, rt.client_id, inv.client_id) is not null then null
                  when x.ref_kind = 'fc' then 'inventory_item_unknown'
                  when coalesce(sh.id, rt.id) is null then x.ref_kind || '_not_yet_known'
                  else x.ref_kind || '_without_client' end as attribution_reason
        from x
        left join shipments sh on x.ref_kind = 'shipment' and sh.id = x.ref_key and sh.source_id = x.source_id
        left join returns rt on x.ref_kind = 'return' and rt.id = x.ref_key and rt.source_id = x.source_id
        left join inventory_items inv on x.ref_kind = 'fc' and inv.id = x.ref_key and inv.source_id = x.source_id
    ), up as (
      insert into transactions as t (transaction_id, source_id, amount, currency_code, charge_date, invoice_id,
                                     invoice_date, invoice_type, invoiced_status, reference_id, reference_type,
                                     transaction_fee, transaction_type, fulfillment_center, taxes, additional_details,
                                     client_id, attribution_status, attribution_reason, event_time, event_inbox_id)
      select a.transaction_id, a.source_id, a.amount, a.currency_code, a.charge_date, a.invoice_id, a.invoice_date,
             a.invoice_type, a.invoiced_status, a.reference_id, a.reference_type, a.transaction_fee,
             a.transaction_type, a.fulfillment_center, a.taxes::jsonb, a.additional_details::jsonb, a.client_id,
             a.attribution_status, a.attribution_reason, a.event_time, a.event_inbox_id
        from attributed a
       order by a.transaction_id
      on conflict (transaction_id) do update set
        ${sql.unsafe(TRANSACTION_SET)},
        client_id = case when t.source_id = excluded.source_id then coalesce(excluded.client_id, t.client_id) else t.client_id end,
        -- A client once known is kept (a newer version whose reference is not known, or no longer: an inventory item
        -- removed), and its status with it.
        attribution_status = case when t.source_id <> excluded.source_id
                                    or (t.attribution_status = 'attributed' and excluded.client_id is null)
                                  then t.attribution_status else excluded.attribution_status end,
        attribution_reason = case when t.source_id <> excluded.source_id
                                    or (t.attribution_status = 'attributed' and excluded.client_id is null)
                                  then t.attribution_reason else excluded.attribution_reason end,
        updated_at = case when t.source_id = excluded.source_id then now() else t.updated_at end
      where t.source_id <> excluded.source_id
         or (excluded.event_time, excluded.event_inbox_id) > (t.event_time, t.event_inbox_id)
      returning t.transaction_id, t.event_time, t.attribution_status, t.source_id
    )
    select up.transaction_id as id, (p.transaction_id is null or up.event_time > p.event_time) as newer,
           up.attribution_status, up.source_id
      from up left join transactions p on p.transaction_id = up.transaction_id`;
}
