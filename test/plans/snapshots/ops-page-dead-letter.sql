-- readDeadLetter (src/ops/page/queries.ts): one dead letter
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    select id::float8 as id, source_id as "sourceId", event_id as "eventId", topic, status, via, attempts,
           received_at as "receivedAt", processed_at as "processedAt", headers, body, last_error as "lastError"
      from inbox_events where id = $1::bigint and status in ('dead', 'ignored');
