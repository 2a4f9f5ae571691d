-- pruneInbox (src/inbox/prune.ts): the bound (lastInboxIdBefore) and one batch of processed rows
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
select max(id) as hi from inbox_events;
-- statement 2
      select id, received_at < $1::timestamptz as old from inbox_events where id >= $2::bigint order by id limit 1;
-- statement 3
    with deleted as (
      delete from inbox_events where id in (
        select id from inbox_events
         where id > $1::bigint and id <= $2::bigint
           and status = 'processed' and received_at < $3::timestamptz
         order by id
         limit $4::int)
      returning id)
    select count(*)::int as deleted, max(id) as last from deleted;
