-- claimInboxChunk (src/inbox/claim.ts)
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    with locked as (
      with recursive active(source_id) as (
        (select source_id from inbox_events where status = 'pending' order by source_id limit 1)
        union all
        select (select e.source_id from inbox_events e
                 where e.status = 'pending' and e.source_id > a.source_id
                 order by e.source_id limit 1)
          from active a
         where a.source_id is not null
      ), share as (
        select ceil($1::numeric / greatest(count(*), 1))::int as n from active where source_id is not null
      ), candidates as (
        select p.id, p.turn
          from active a
         cross join lateral (
           select e.id, row_number() over (order by e.id) as turn
             from inbox_events e
            where e.status = 'pending' and e.source_id = a.source_id
            order by e.id
            limit (select n from share)
         ) p
         where a.source_id is not null
      ), fair as (
        select e.id, octet_length(e.body)::bigint as bytes, c.turn
          from candidates c
          join inbox_events e on e.id = c.id
         where e.status = 'pending'
         order by c.turn, c.id
         limit $2
           for update of e skip locked
      ), fill as (
        select id, octet_length(body)::bigint as bytes, $3::bigint + 1 as turn
          from inbox_events
         where status = 'pending' and id not in (select id from fair)
         order by id
         limit (select $4 - count(*) from fair)
           for update skip locked
      )
      select * from fair
      union all
      select * from fill
    ), sized as (
      select id, sum(bytes) over (order by turn, id) as total, row_number() over (order by turn, id) as n from locked
    )
    select e.id, e.source_id, e.topic, e.body, e.event_time::text, e.received_at::text, e.via,
           (select count(*) from locked)::int as locked
      from sized s
      join inbox_events e on e.id = s.id
     where s.n = 1 or s.total <= $5::bigint
     order by e.id;
