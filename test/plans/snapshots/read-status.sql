-- readStatus (src/ops/status.ts): ops status
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
select set_config('statement_timeout', $1, true);
-- statement 2
      select now() as at,
        (select count(*) from (select 1 from inbox_events where status = 'pending' limit $1::int) x)::int as pending,
        (select extract(epoch from now() - received_at)::float8 from inbox_events
          where status = 'pending' order by id limit 1) as "oldestPendingAgeSeconds",
        (select coalesce(sum(count), 0) from inbox_finished_counts where status = 'dead')::float8 as dead,
        (select coalesce(sum(count), 0) from inbox_finished_counts where status = 'ignored')::float8 as ignored;
-- statement 3
      select s.id as "sourceId", s.name as "sourceName", s.enabled, st.stream, c.cursor_time as "cursorTime",
             extract(epoch from now() - c.last_success_at)::float8 as "ageSeconds", c.last_success_at as "lastSuccessAt",
             extract(epoch from now() - s.created_at)::float8 as "sourceAgeSeconds",
             (s.enabled and s.api_token is not null) as polled,
             c.last_error as "lastError", coalesce(c.catches, 0)::float8 as catches, c.backfill_since as "backfillSince",
             coalesce(c.cursor_token is not null, false) as "inProgress", c.window_end as "windowEnd"
        from sources s
       cross join unnest($1::text[]) as st(stream)
        left join poll_cursors c on c.source_id = s.id and c.stream = st.stream
       where c.source_id is not null or (s.enabled and s.api_token is not null)
       order by s.name, st.stream;
-- statement 4
      select key, tokens::float8 as tokens, blocked_until as "blockedUntil", calls::float8 as calls, throttled::float8 as throttled from rate_budgets order by key;
-- statement 5
      select worker_id as "workerId", host, pid, started_at as "startedAt", last_seen_at as "lastSeenAt",
             extract(epoch from now() - last_seen_at)::float8 as "ageSeconds",
             last_seen_at > now() - $1::int * interval '1 millisecond' as alive
        from worker_heartbeats order by started_at, worker_id;
-- statement 6
      select reason, sum(count)::float8 as count
        from (select reason, count from quarantine_counts
               where bucket > now() - interval '24 hours' limit $1::int) q
       group by reason order by count desc, reason;
-- statement 7
      select t.identifier as task,
             count(*) filter (where j.locked_at is null and j.attempts < j.max_attempts)::int as waiting,
             count(*) filter (where j.locked_at is not null)::int as locked,
             count(*) filter (where j.attempts >= j.max_attempts)::int as failed
        from (select task_id, locked_at, attempts, max_attempts from graphile_worker._private_jobs limit $1::int) j
        join graphile_worker._private_tasks t on t.id = j.task_id
       group by t.identifier order by t.identifier;
-- statement 8
      select application_name as application, coalesce(state, 'unknown') as state, count(*)::int as count
        from pg_stat_activity
       where datname = current_database() and application_name like 'wharf%'
       group by 1, 2 order by 1, 2;
-- statement 9
      select count(*) filter (where enabled)::int as enabled, count(*) filter (where not enabled)::int as disabled from sources;
-- statement 10
      select topic, field, problem, count::float8 as count, first_seen_at as "firstSeenAt", last_seen_at as "lastSeenAt"
        from payload_drift order by last_seen_at desc, topic, field limit 200;
-- statement 11
      select source_id as "sourceId", count(*)::int as waiting, count(*) filter (where attempts > 0)::int as failing,
             extract(epoch from now() - min(requested_at))::float8 as "oldestAgeSeconds"
        from resolve_requests group by source_id order by source_id;
-- statement 12
      select s.id as "sourceId", s.name as "sourceName", w.state, coalesce(w.missing_topics, '{}') as "missingTopics",
             w.checked_at as "checkedAt", w.last_error as "lastError"
        from sources s left join webhook_subscriptions w on w.source_id = s.id
       where s.api_token is not null and s.enabled
       order by s.name;
-- statement 13
    select source_id as "sourceId", stream, window_start as "windowStart", window_end as "windowEnd", state,
           provider_count as "providerCount", wharf_count as "wharfCount"
      from reconcile_windows
     order by source_id, stream, window_start
     limit 100000;
-- statement 14
    select source_id as "sourceId", day::text as day, webhook_applied::float8 as "webhookApplied",
           poll_applied::float8 as "pollApplied", replay_applied::float8 as "replayApplied", catches::float8 as catches
      from source_trust_days
     where day > (now() at time zone 'UTC')::date - $1::int
     order by source_id, day desc;
-- statement 15
    select s.id as "sourceId", s.name as "sourceName", (s.enabled and s.api_token is not null) as polled,
           case when pi.source_id is null then null
                else json_build_object('ms', pi.interval_ms, 'reason', pi.reason, 'share', pi.share, 'events', pi.events,
                                       'budgetFloorMs', pi.budget_floor_ms, 'decidedAt', pi.decided_at) end as interval
      from sources s
      left join poll_intervals pi on pi.source_id = s.id
     where (s.enabled and s.api_token is not null) or pi.source_id is not null
        or s.id = any($1::text[])
     order by s.name;
