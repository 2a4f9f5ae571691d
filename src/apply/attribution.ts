import type { Queryable } from '../db/client.js';

/**
 * Attribution catch-up: a charge that arrived before its shipment (or return) is `pending`; the chunk that brings the
 * shipment attributes it, set-based.
 *
 * Why the lock: two drains race. Drain A writes charge T (its shipment S not visible: pending) while drain B writes S
 * and looks for pending charges of S (T not committed yet: none). Both commit; T would stay pending. So, after its
 * upserts, each chunk takes a transaction-scoped advisory lock per reference that matters (shipments/returns that just
 * became attributable, references of charges it left pending) and only then runs the catch-up in a new statement
 * (a fresh snapshot in READ COMMITTED). Whoever locks second waits for the first to commit, then sees its rows.
 *
 * Why no deadlock: keys are locked in sorted order in one statement, and after it a chunk waits on nothing else (the
 * catch-up skips rows another chunk holds: that chunk holds the same key lock and re-checks those rows itself).
 *
 * Storage (FC) charges race the same way with an operator storing inventory items (src/ops/tenancy.ts): a chunk that
 * writes a charge whose item it cannot see yet leaves it `unattributable` (`inventory_item_unknown`), takes the
 * source's inventory key and re-checks it; the operator's transaction takes the same key after storing the items and
 * before attributing. One key per source, not per item: an inventory load stores thousands of items at once, and
 * advisory locks share the server's lock table.
 */

/** Any constant: the namespace of these locks (the two-int form never collides with bigint-keyed advisory locks). */
const ATTRIBUTION_LOCK_SPACE = 72_026;

/** Key of a reference: `shipment:123`, `return:456`. */
export const referenceKey = (kind: string, id: number | string) => `${kind}:${id}`;

/** Key of a source's inventory items, for its storage charges (see above). */
export const inventoryKey = (sourceId: string) => `inventory:${sourceId}`;

/** What a storage charge's `attribution_reason` says while its item is not known. */
export const INVENTORY_ITEM_UNKNOWN = 'inventory_item_unknown';

/** Takes the advisory locks of `keys` (sorted, deduplicated) until the transaction ends. Its row: how many. */
export function lockAttributionKeys(sql: Queryable, keys: readonly string[]) {
  return sql<{ n: number }[]>`
    select count(pg_advisory_xact_lock(${ATTRIBUTION_LOCK_SPACE}::int, k))::int as n
      from (select distinct hashtext(key) as k from unnest(${keys as string[]}::text[]) as key order by 1) sorted`;
}

/**
 * Attributes the pending charges that reference the given shipments or returns (reference type spelled `Shipment` or
 * `Return`, as the provider does: that is what the partial index serves), and the charges whose ids are given (those
 * this chunk left pending, or storage charges whose item it did not know), wherever the reference, of the charge's own
 * source, now has a client. One statement; rows locked by another drain are skipped (see above). Its rows: the
 * charges it attributed.
 */
export function attributePendingTransactions(
  sql: Queryable,
  refs: { shipmentIds: readonly number[]; returnIds: readonly number[]; transactionIds: readonly string[] },
) {
  return sql<{ transaction_id: string }[]>`
    with candidates as (
      select t.transaction_id, t.source_id, lower(t.reference_type) as kind,
             case when lower(t.reference_type) = 'fc'
                  then case when split_part(t.reference_id, '-', 2) ~ '^[0-9]{1,18}$' then split_part(t.reference_id, '-', 2)::bigint end
                  when t.reference_id ~ '^[0-9]{1,18}$' then t.reference_id::bigint end as ref_key
        from transactions t
       where (t.attribution_status = 'pending'
              and ((t.reference_type = 'Shipment' and t.reference_id = any(${refs.shipmentIds.map(String)}::text[]))
                or (t.reference_type = 'Return' and t.reference_id = any(${refs.returnIds.map(String)}::text[]))))
          or (t.transaction_id = any(${refs.transactionIds as string[]}::text[])
              and (t.attribution_status = 'pending'
                or (t.attribution_status = 'unattributable' and t.attribution_reason = ${INVENTORY_ITEM_UNKNOWN})))
       order by t.transaction_id
         for update of t skip locked
    ), resolved as (
      select c.transaction_id, coalesce(sh.client_id, rt.client_id, inv.client_id) as client_id
        from candidates c
        -- Only the charge's own source's shipments, returns and items (docs/tenancy.md).
        left join shipments sh on c.kind = 'shipment' and sh.id = c.ref_key and sh.source_id = c.source_id
        left join returns rt on c.kind = 'return' and rt.id = c.ref_key and rt.source_id = c.source_id
        left join inventory_items inv on c.kind = 'fc' and inv.id = c.ref_key and inv.source_id = c.source_id
    )
    update transactions t
       set client_id = r.client_id, attribution_status = 'attributed', attribution_reason = null, updated_at = now()
      from resolved r
     where t.transaction_id = r.transaction_id and r.client_id is not null
    returning t.transaction_id`;
}
