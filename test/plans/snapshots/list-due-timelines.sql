-- listDueTimelines (src/poll/timelines.ts): one batch of a source
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    select id, order_id as "orderId",
           coalesce(actual_fulfillment_date, case when tracking_number is not null then created_date end) as "shippedAt"
      from shipments
     where delivered_at is null and status not in ('Cancelled', 'CleanSweeped')
       and source_id = $1
       and coalesce(timeline_next_check_at, '-infinity'::timestamptz) <= $2::timestamptz
     order by coalesce(timeline_next_check_at, '-infinity'::timestamptz), id
     limit $3;
