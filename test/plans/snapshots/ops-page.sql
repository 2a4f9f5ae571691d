-- readOpsPage (src/ops/page/queries.ts): the ops page overview
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
select set_config('statement_timeout', $1, true);
-- statement 2
      select to_regclass('public.poll_runs') is not null as "pollRuns",
             to_regclass('public.quarantine_counts') is not null as "quarantineCounts",
             to_regclass('public.webhook_subscriptions') is not null as "subscriptions";
-- statement 3
      select (select count(*) from (select 1 from inbox_events where status = 'pending' limit $1::int) x)::int as pending,
             (select extract(epoch from $2::timestamptz - received_at)::float8 from inbox_events
               where status = 'pending' order by id limit 1) as "oldestPendingAgeS",
             (select coalesce(sum(count), 0) from inbox_finished_counts where status = 'dead')::float8 as dead;
-- statement 4
      select (extract(epoch from at) * 1000)::float8 as at, inbox_pending as pending, oldest_pending_age_s as "oldestPendingAgeS",
             (applied * 60000.0 / greatest(window_ms, 1))::float8 as "appliedPerMin",
             lag_p50_ms as "lagP50Ms", lag_p99_ms as "lagP99Ms"
        from ops_samples where at > $1::timestamptz order by at;
-- statement 5
      select (select max_inbox_id from ops_samples order by at desc limit 1)::text as "maxInboxId";
-- statement 6
select coalesce(max(id), 0)::text as "maxId" from inbox_events;
-- statement 7
    with fresh as (
      -- Webhooks since the last sample (or, before any sample, among the newest ids): the sample holds older ones.
      select source_id, max(received_at) as last_webhook
        from inbox_events
       where id > $1::bigint and via = 'webhook'
       group by source_id),
    day as (
      select source_id, sum(webhook_events)::int as webhook, sum(poll_events)::int as poll, sum(catches)::int as catches
        from ops_source_samples where at > $2::timestamptz group by source_id),
    dead as (select source_id, sum(count)::int as n from inbox_finished_counts where status = 'dead' group by source_id),
    polls as (select source_id, max(last_run_at) as last_poll from poll_cursors group by source_id)
    select s.id, s.name, s.enabled, null::text as subscription,
           greatest(st.last_webhook_at, f.last_webhook) as "lastWebhookAt", pl.last_poll as "lastPollAt",
           coalesce(d.webhook, 0) as "webhookEvents24h", coalesce(d.poll, 0) as "pollEvents24h",
           coalesce(d.catches, 0) as "catches24h", coalesce(dl.n, 0) as "deadLetters", 0 as "rejected24h"
      from sources s
      left join ops_source_state st on st.source_id = s.id
      left join fresh f on f.source_id = s.id
      left join day d on d.source_id = s.id
      left join dead dl on dl.source_id = s.id
      left join polls pl on pl.source_id = s.id
     order by s.name limit 500;
-- statement 8
        select source_id as "sourceId", sum(count)::int as n from quarantine_counts
         where bucket >= date_trunc('hour', $1::timestamptz) group by source_id;
-- statement 9
    select row_to_json(w) as r from webhook_subscriptions w order by source_id limit 500;
-- statement 10
      with k as (
        select reason_key, min(reason) as reason, topic, source_id, sum(count) as n
          from inbox_finished_counts where status = 'dead'
         group by reason_key, topic, source_id having sum(count) > 0),
      g as (
        select reason_key, min(reason) as reason, sum(n)::float8 as count,
               array_agg(distinct coalesce(topic, '(none)')) as topics, array_agg(distinct source_id) as sources
          from k group by reason_key order by sum(n) desc, min(reason) limit $1::int)
      select g.reason, g.count, g.topics, g.sources,
             (select e.received_at from inbox_events e
               where e.status = 'dead' and coalesce(md5(e.last_error), '') = g.reason_key
               order by coalesce(md5(e.last_error), ''), e.received_at, e.id limit 1) as "firstAt",
             r.recent
        from g
        cross join lateral (
          select json_agg(json_build_object('id', x.id, 'topic', x.topic, 'sourceId', x.source_id, 'receivedAt', x.received_at)
                          order by x.received_at desc, x.id desc) as recent
            from (select e.id, e.topic, e.source_id, e.received_at from inbox_events e
                   where e.status = 'dead' and coalesce(md5(e.last_error), '') = g.reason_key
                   order by coalesce(md5(e.last_error), '') desc, e.received_at desc, e.id desc limit $2::int) x) r
       order by g.count desc, g.reason;
-- statement 11
      select c.source_id as "sourceId", s.name as "sourceName", c.stream, c.cursor_time as "cursorTime",
             c.last_run_at as "lastRunAt", c.last_success_at as "lastSuccessAt", c.last_error as "lastError",
             c.catches::float8 as catches, c.cursor_token is not null as "inProgress"
        from poll_cursors c join sources s on s.id = c.source_id
       order by s.name, c.stream limit 500;
-- statement 12
          select row_to_json(pr) as r from (select * from poll_runs order by id desc limit 30) pr;
-- statement 13
      select worker_id as "workerId", host, pid, started_at as "startedAt", last_seen_at as "lastSeenAt",
             last_seen_at > $1::timestamptz - $2::int * interval '1 millisecond' as alive
        from worker_heartbeats order by started_at, worker_id limit 200;
-- statement 14
      select worker_id as "workerId", cardinality(job_ids) as jobs, cardinality(queue_names) as queues,
             released_at as "releasedAt", released_by as "releasedBy"
        from lock_releases order by id desc limit 20;
-- statement 15
      select t.identifier as task,
             count(*) filter (where j.locked_at is null and j.attempts < j.max_attempts)::int as waiting,
             count(*) filter (where j.locked_at is not null)::int as locked,
             count(*) filter (where j.attempts >= j.max_attempts)::int as failed
        from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
       group by t.identifier order by t.identifier;
-- statement 16
    select source_id as "sourceId", stream, window_start as "windowStart", window_end as "windowEnd", state,
           provider_count as "providerCount", wharf_count as "wharfCount"
      from reconcile_windows
     order by source_id, stream, window_start
     limit 100000;
