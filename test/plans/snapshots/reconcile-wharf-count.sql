-- wharfOrderCount (src/poll/reconcile.ts): a source's complete orders of 30 days
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    select count(*)::int as n from orders o
     where o.source_id = $1 and o.last_update_at >= $2 and o.last_update_at < $3
       and (select count(*) from shipments s where s.order_id = o.id and s.source_id = o.source_id)
           >= coalesce(o.shipment_count, 1);
