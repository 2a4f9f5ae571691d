-- attributePendingTransactions (src/apply/attribution.ts): the catch-up of a 500-event chunk
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    with candidates as (
      select t.transaction_id, t.source_id, lower(t.reference_type) as kind,
             case when lower(t.reference_type) = 'fc'
                  then case when split_part(t.reference_id, '-', 2) ~ '^[0-9]{1,18}$' then split_part(t.reference_id, '-', 2)::bigint end
                  when t.reference_id ~ '^[0-9]{1,18}$' then t.reference_id::bigint end as ref_key
        from transactions t
       where (t.attribution_status = 'pending'
              and ((t.reference_type = 'Shipment' and t.reference_id = any($1::text[]))
                or (t.reference_type = 'Return' and t.reference_id = any($2::text[]))))
          or (t.transaction_id = any($3::text[])
              and (t.attribution_status = 'pending'
                or (t.attribution_status = 'unattributable' and t.attribution_reason = $4)))
       order by t.transaction_id
         for update of t skip locked
    ), resolved as (
      select c.transaction_id, coalesce(sh.client_id, rt.client_id, inv.client_id) as client_id
        from candidates c
        -- Only the charge's own source's shipments, returns and items (docs/tenancy.md).
        left join shipments sh on c.kind = 'shipment' and sh.id = c.ref_key and sh.source_id = c.source_id
        left join returns rt on c.kind = 'return' and rt.id = c.ref_key and rt.source_id = c.source_id
        left join inventory_items inv on c.kind = 'fc' and inv.id = c.ref_key and inv.source_id = c.source_id
    )
    update transactions t
       set client_id = r.client_id, attribution_status = 'attributed', attribution_reason = null, updated_at = now()
      from resolved r
     where t.transaction_id = r.transaction_id and r.client_id is not null
    returning t.transaction_id;
