-- claimInboxChunk (src/inbox/claim.ts)
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    with locked as (
      -- Scans run newest first wherever the order allows: a drained source's processed rows stay in the partial index
      -- as dead entries at the old end of its range until vacuum, and an oldest-first probe would step over them all.
      -- Each per-source scan reads the (source_id, id) index from the source's end of its range, bounded by a row
      -- comparison, and keeps its own source's rows after the limit: only that index gives the order. With
      -- source_id = x the planner may walk the pending id index instead and drop every other source's rows (it did on
      -- PostgreSQL 17 in the plan test, at random with the sample ANALYZE took), and a range of one value was planned
      -- as a bitmap scan of the whole source and a sort.
      with recursive active(source_id) as (
        (select source_id from inbox_events where status between 'pending' and 'pending' order by source_id desc limit 1)
        union all
        select (select e.source_id from inbox_events e
                 where e.status between 'pending' and 'pending' and e.source_id < a.source_id
                 order by e.source_id desc limit 1)
          from active a
         where a.source_id is not null
      ), classed as (
        -- Each active source's pending rows, counted up to bound + 1: light is 1..bound, backlogged bound + 1.
        select a.source_id, pending.n
          from active a
         cross join lateral (
           select count(*) filter (where c.source_id = a.source_id) as n
             from (select e.source_id from inbox_events e
                    where e.status between 'pending' and 'pending' and (e.source_id, e.id) <= (a.source_id, $1::bigint)
                    order by e.source_id desc, e.id desc
                    limit $2) c
         ) pending
         where a.source_id is not null
      ), served as (
        select source_id from classed
         where n > $3
      ), share as (
        select ceil($4::numeric / greatest(count(*), 1))::int as n from served
      ), candidates as (
        select p.id, p.turn
          from served a
         cross join lateral (
           select x.id, row_number() over (order by x.id) as turn
             from (select e.id, e.source_id from inbox_events e
                    -- A light source's rows all fit: newest first finds them without passing its drained ones.
                    where e.status between 'pending' and 'pending' and (e.source_id, e.id) > (a.source_id, 0::bigint) order by e.source_id, e.id limit (select n from share)) x
            where x.source_id = a.source_id
         ) p
         order by p.turn, p.id
         limit $5
      ), fair as (
        -- By primary key (= any of an array), as the final read: a join with a CTE may be planned as a scan of the inbox.
        -- The status is checked after the lock, not in the scan: a status clause lets the planner read a pending index
        -- whole instead (it did, with statistics that saw no pending row); a row another drain finished meanwhile is
        -- locked and left out.
        select id, status, octet_length(body)::bigint as bytes
          from inbox_events
         where id = any(array(select id from candidates))
           for update skip locked
      ), fill as (
        select id, octet_length(body)::bigint as bytes, $6::bigint + 1 as turn
          from inbox_events
         where status = 'pending' and source_id = any(array(select source_id from served))
           and id not in (select id from fair)
         order by id
         limit (select $7 - count(*) from fair where status = 'pending')
           for update skip locked
      )
      select f.id, f.bytes, c.turn from fair f join candidates c on c.id = f.id where f.status = 'pending'
      union all
      select * from fill
    ), sized as (
      select id, sum(bytes) over (order by turn, id) as total, row_number() over (order by turn, id) as n from locked
    )
    select e.id, e.source_id, e.topic, e.body, e.event_time::text, e.received_at::text, e.via,
           (select count(*) from locked)::int as locked
      from inbox_events e
     where e.id = any(array(select id from sized where n = 1 or total <= $8::bigint))
     order by e.id;
