-- explainEntity (src/ops/explain.ts): ops explain shipment <id>
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
select set_config('statement_timeout', $1, true);
-- statement 2
select to_jsonb(t) - 'data' as row from shipments t where id = $1::bigint;
-- statement 3
      select id::float8 as id, source_id as "sourceId", event_id as "eventId", topic, body, event_time::text as "eventTime",
             received_at::text as "receivedAtText", received_at as "receivedAt", via, status, last_error as "lastError",
             duplicate_count as "duplicateCount", processed_at as "processedAt"
        from inbox_events
       where id in (
         select id from inbox_events where entity_keys && $1::text[] and status <> 'pending'
         union all
         select id from inbox_events where status = 'pending' and strpos(body, $2) > 0)
       order by id desc
       limit $3::int;
