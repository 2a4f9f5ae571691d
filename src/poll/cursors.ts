import type { Sql } from '../db/client.js';
import type { Queryable } from '../db/client.js';
import { type PollStream, PollStreams } from './streams.js';

/**
 * Poll cursors: one row per (source, stream) in `poll_cursors`. A poll opens a window with a fixed upper bound
 * (`window_end`), commits each page's events together with its position (`cursor_token`), and on its last page moves
 * `cursor_time` to `window_end` and clears both. A poll killed mid-way leaves `window_end` and `cursor_token` set:
 * the next run resumes there, within the same window.
 */

export interface PollWindow {
  /** Upper bound of this poll, fixed until it completes. */
  windowEnd: Date;
  /** Where the last completed poll ended (null: never polled). */
  cursorTime: Date | null;
  /** The committed position inside this window (null: start at its beginning). */
  token: string | null;
  /** Set by an operator to make the next poll reach back this far. */
  backfillSince: Date | null;
  /** The window was opened by an earlier run that did not finish it (its end is older than this run's). */
  resumed: boolean;
}

/**
 * Opens a poll window ending at `windowEnd`, or returns the window already open for this stream (a poll that died
 * mid-way), whose end is kept. Records the run in `last_run_at`. One statement; creates the cursor on first use.
 */
export async function openPollWindow(
  sql: Sql,
  p: { sourceId: string; stream: PollStream; windowEnd: Date },
): Promise<PollWindow> {
  const [row] = await sql<Omit<PollWindow, 'resumed'>[]>`
    insert into poll_cursors as c (source_id, stream, window_end, last_run_at)
    values (${p.sourceId}, ${p.stream}, ${p.windowEnd}::timestamptz, now())
    on conflict (source_id, stream) do update
       set window_end = coalesce(c.window_end, excluded.window_end), last_run_at = now(), updated_at = now()
    returning window_end as "windowEnd", cursor_time as "cursorTime", cursor_token as token,
              backfill_since as "backfillSince"`;
  const windowEnd = row.windowEnd;
  return {
    windowEnd,
    cursorTime: row.cursorTime,
    token: row.token,
    backfillSince: row.backfillSince,
    resumed: windowEnd.getTime() !== p.windowEnd.getTime(),
  };
}


/**
 * Moves the cursor past a committed page, inside that page's transaction (commitPollPage's `write`). `next` is the
 * position after this page, or null when it was the last: then `cursor_time` becomes the window's end (never moving
 * backwards), the window closes, and the run counts as a success.
 */
export async function advancePollCursor(
  tx: Queryable,
  p: { sourceId: string; stream: PollStream; next: string | null },
): Promise<void> {
  if (p.next !== null) {
    await tx`
      update poll_cursors set cursor_token = ${p.next}, updated_at = now()
       where source_id = ${p.sourceId} and stream = ${p.stream}`;
    return;
  }
  await tx`
    update poll_cursors
       set cursor_time = greatest(cursor_time, window_end), window_end = null, cursor_token = null,
           last_success_at = now(), last_error = null, backfill_since = null, updated_at = now()
     where source_id = ${p.sourceId} and stream = ${p.stream}`;
}

/** A stream without windows (timelines) completed a run. */
export async function markPollSuccess(sql: Sql, p: { sourceId: string; stream: PollStream }): Promise<void> {
  await sql`
    insert into poll_cursors as c (source_id, stream, last_run_at, last_success_at)
    values (${p.sourceId}, ${p.stream}, now(), now())
    on conflict (source_id, stream) do update
       set last_run_at = now(), last_success_at = now(), last_error = null, updated_at = now()`;
}

/** Records why a run failed (a provider error message: never a token or header). Keeps the window for resuming. */
export async function recordPollError(
  sql: Sql,
  p: { sourceId: string; stream: PollStream; message: string },
): Promise<void> {
  await sql`
    insert into poll_cursors as c (source_id, stream, last_run_at, last_error)
    values (${p.sourceId}, ${p.stream}, now(), ${p.message.slice(0, 500)})
    on conflict (source_id, stream) do update set last_error = excluded.last_error, updated_at = now()`;
}

/**
 * Every (enabled source with an API token, stream) whose last run started at least its source's interval ago
 * (`poll_intervals`, chosen by planPollIntervals; `intervalMs`, the base, for a source without one), or never ran.
 * A run is due `slackMs` early (intervals.ts: scheduleSlackMs). One statement. A poll that died mid-way is due again at its interval
 * and resumes its window.
 */
export async function listDuePollStreams(
  sql: Sql,
  p: { intervalMs: number; slackMs?: number },
): Promise<{ sourceId: string; stream: PollStream }[]> {
  return sql<{ sourceId: string; stream: PollStream }[]>`
    select s.id as "sourceId", st.stream
      from sources s
     cross join unnest(${PollStreams as unknown as string[]}::text[]) as st(stream)
      left join poll_cursors c on c.source_id = s.id and c.stream = st.stream
      left join poll_intervals pi on pi.source_id = s.id
     where s.enabled and s.api_token is not null
       and (c.last_run_at is null
            or c.last_run_at <= now() - (coalesce(pi.interval_ms, ${p.intervalMs}::int) - ${p.slackMs ?? 0}::int)::float8
                                        * interval '1 millisecond')
     order by s.id, st.stream`;
}

export interface PollStatusRow {
  sourceId: string;
  sourceName: string;
  stream: PollStream;
  /** High-water mark of the last completed poll. */
  cursorTime: Date | null;
  /** Set while a poll is in progress (or died mid-way and will resume). */
  windowEnd: Date | null;
  lastRunAt: Date | null;
  lastSuccessAt: Date | null;
  lastError: string | null;
  /** Events this stream found before any webhook brought them (counted by the drain). */
  catches: number;
  /** The source's API budget (shared by its streams): calls made and 429s received, all processes. */
  budgetCalls: number | null;
  budgetThrottled: number | null;
  budgetBlockedUntil: Date | null;
}

/**
 * The poller's state for the ops status command: every polled source and stream, cursors, errors, poll catches
 * and the token's budget (matched by the token's hash, stored beside the encrypted token: rate-budget.ts keys on the
 * same SHA-256; the token itself is not read). One statement.
 */
export async function getPollStatus(sql: Sql): Promise<PollStatusRow[]> {
  const rows = await sql<PollStatusRow[]>`
    select s.id as "sourceId", s.name as "sourceName", st.stream,
           c.cursor_time as "cursorTime", c.window_end as "windowEnd", c.last_run_at as "lastRunAt",
           c.last_success_at as "lastSuccessAt", c.last_error as "lastError", coalesce(c.catches, 0)::float8 as catches,
           b.calls::float8 as "budgetCalls", b.throttled::float8 as "budgetThrottled",
           b.blocked_until as "budgetBlockedUntil"
      from sources s
     cross join unnest(${PollStreams as unknown as string[]}::text[]) as st(stream)
      left join poll_cursors c on c.source_id = s.id and c.stream = st.stream
      left join rate_budgets b on b.key = s.api_token_hash
     where s.api_token is not null or c.source_id is not null
     order by s.name, st.stream`;
  return rows.map((r) => ({
    ...r,
    cursorTime: r.cursorTime,
    windowEnd: r.windowEnd,
    lastRunAt: r.lastRunAt,
    lastSuccessAt: r.lastSuccessAt,
    budgetBlockedUntil: r.budgetBlockedUntil,
  }));
}
