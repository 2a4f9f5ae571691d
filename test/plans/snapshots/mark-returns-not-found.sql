-- markReturnsNotFound (src/poll/returns.ts)
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    update transactions t set attribution_reason = $1, updated_at = now()
      from (select transaction_id from transactions
             where attribution_status = 'pending' and reference_type = 'Return'
               and reference_id = any($2::text[]) and source_id = $3
             order by transaction_id
               for update) l
     where t.transaction_id = l.transaction_id;
