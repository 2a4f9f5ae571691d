-- pruneInbox (src/inbox/prune.ts): a run with nothing left to delete (every step's closing batch)
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    select s.processed_after_id as after_id, s.reopened, p.min_pending
      from (select min(id) as min_pending from inbox_events where status = 'pending') p
      left join inbox_prune_state s on s.id;
-- statement 2
select max(id) as hi from inbox_events;
-- statement 3
      select id, received_at < $1::timestamptz as old from inbox_events where id >= $2::bigint order by id limit 1;
-- statement 4
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
-- statement 5
    update inbox_prune_state set processed_after_id = greatest(processed_after_id, $1::bigint)
     where id and reopened = $2::bigint
    returning 1;
-- statement 6
    delete from inbox_events where id = any(array(
      select id from inbox_events
       where status = 'dead' and received_at < $1::timestamptz
       order by received_at
       limit $2::int))
    returning 1;
-- statement 7
    delete from inbox_events where id = any(array(
      select id from inbox_events
       where status = 'ignored' and received_at < $1::timestamptz
       order by received_at
       limit $2::int))
    returning 1;
-- statement 8
    delete from quarantine where id = any(array(
      select id from quarantine where received_at < $1::timestamptz order by received_at limit $2::int))
    returning 1;
-- statement 9
    delete from quarantine_counts where (source_id, reason, bucket) in (
      select source_id, reason, bucket from quarantine_counts
       where bucket < $1::timestamptz order by bucket limit $2::int)
    returning 1;
