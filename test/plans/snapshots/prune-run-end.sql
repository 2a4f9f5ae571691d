-- pruneInbox (src/inbox/prune.ts): a run with nothing left to delete (every step's closing batch)
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
-- statement 4
    delete from inbox_events where id in (
      select id from inbox_events
       where status in ('dead', 'ignored') and status = any($1::text[]) and received_at < $2::timestamptz
       order by status, received_at
       limit $3::int)
    returning 1;
-- statement 5
    delete from quarantine where id in (
      select id from quarantine where received_at < $1::timestamptz order by received_at limit $2::int)
    returning 1;
-- statement 6
    delete from quarantine_counts where (source_id, reason, bucket) in (
      select source_id, reason, bucket from quarantine_counts
       where bucket < $1::timestamptz order by bucket limit $2::int)
    returning 1;
