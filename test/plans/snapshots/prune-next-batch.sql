-- deleteProcessedBatch (src/inbox/prune.ts): a batch after the first one of a run
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    with seen as (
      select id, received_at < $1::timestamptz as old from inbox_events
       where id > $2::bigint and id <= $3::bigint and status = 'processed'
       order by id
       limit $4::int),
    deleted as (
      -- By primary key (= any of an array): rows are locked in id order, so two runs at once wait for each other rather
      -- than deadlock (an id in (subquery) is hashed, and two runs locked their shared rows in hash order).
      delete from inbox_events where id = any(array(select id from seen where old))
      returning id)
    select (select count(*)::int from deleted) as deleted, (select count(*)::int from seen) as scanned,
           (select max(id) from seen) as last, (select min(id) from seen where not old) as first_kept;
