-- claimInboxChunk (src/inbox/claim.ts)
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    with locked as (
      select id, octet_length(body)::bigint as bytes
        from inbox_events
       where status = 'pending'
       order by id
       limit $1
         for update skip locked
    ), sized as (
      select id, sum(bytes) over (order by id) as total, row_number() over (order by id) as n from locked
    )
    select e.id, e.source_id, e.topic, e.body, e.event_time::text, e.received_at::text, e.via,
           (select count(*) from locked)::int as locked
      from sized s
      join inbox_events e on e.id = s.id
     where s.n = 1 or s.total <= $2::bigint
     order by e.id;
