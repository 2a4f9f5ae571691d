-- openPollWindow, commitPollPage and advancePollCursor (src/poll): a transactions poll page
-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).
-- statement 1
    insert into poll_cursors as c (source_id, stream, window_end, last_run_at)
    values ($1, $2, $3::timestamptz, now())
    on conflict (source_id, stream) do update
       set window_end = coalesce(c.window_end, excluded.window_end), last_run_at = now(), updated_at = now()
    returning window_end as "windowEnd", cursor_time as "cursorTime", cursor_token as token,
              backfill_since as "backfillSince";
-- statement 2
    insert into inbox_events as e (source_id, event_id, topic, body, headers, event_time, via, duplicate_count)
    select u.source_id, u.event_id, u.topic, u.body, u.headers::jsonb, u.event_time::timestamptz, u.via, u.copies - 1
      from unnest($1::text[], $2::text[],
                  $3::text[], $4::text[],
                  $5::text[],
                  $6::text[], $7::text[],
                  $8::int[])
           as u(source_id, event_id, topic, body, headers, event_time, via, copies)
    on conflict (source_id, event_id) do update set duplicate_count = e.duplicate_count + excluded.duplicate_count + 1
    returning e.id, e.source_id, e.event_id, (e.xmax = 0) as inserted,
              case when e.xmax = 0 then null else md5(e.body) end as stored_md5;
-- statement 3
    update poll_cursors
       set cursor_time = greatest(cursor_time, window_end), window_end = null, cursor_token = null,
           last_success_at = now(), last_error = null, backfill_since = null, updated_at = now()
     where source_id = $1 and stream = $2;
