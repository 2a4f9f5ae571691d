-- listUnknownReturns (src/poll/returns.ts)
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    select distinct t.reference_id as id
      from transactions t
     where t.attribution_status = 'pending' and t.reference_type = 'Return' and t.reference_id > $1
       and t.source_id = $2
       and t.reference_id ~ '^[0-9]{1,18}$'
       and (t.attribution_reason is distinct from $3
            or t.updated_at <= now() - $4::float8 * interval '1 millisecond')
       and not exists (
         select 1 from returns r
          where r.id = case when t.reference_id ~ '^[0-9]{1,18}$' then t.reference_id::bigint end)
     order by t.reference_id
     limit $5::int;
