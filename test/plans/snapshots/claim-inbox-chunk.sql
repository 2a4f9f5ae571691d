-- claimInboxChunk (src/inbox/claim.ts)
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    select id, source_id, topic, body, event_time::text, received_at::text, via
      from inbox_events
     where status = 'pending'
     order by id
     limit $1
       for update skip locked;
