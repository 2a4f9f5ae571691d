-- deleteProcessedBatch (src/inbox/prune.ts): a batch after the first one of a run
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    with deleted as (
      delete from inbox_events where id in (
        select id from inbox_events
         where id > $1::bigint and id <= $2::bigint
           and status = 'processed' and received_at < $3::timestamptz
         order by id
         limit $4::int)
      returning id)
    select count(*)::int as deleted, max(id) as last from deleted;
