import type { Sql } from '../db/client.js';
import { enqueuePolls } from '../poll/enqueue.js';
import type { PollStream } from '../poll/streams.js';
/** The streams a date means something to (timelines are re-checked per shipment, not from a date). */
export const BACKFILL_STREAMS = ['orders', 'transactions'] as const satisfies readonly PollStream[];

export interface BackfillResult {
  stream: string;
  cursorTime: Date;
  jobId: string;
}

/**
 * Schedules a poll of each stream from `since`: moves the stream's cursor back to `since` (never forward: a cursor
 * already earlier keeps its place, so nothing is skipped), records `backfill_since` (status shows progress as
 * cursor_time catching up), clears a poll in progress, and queues the poller's job to run now. One transaction.
 * Returns false-y (empty) when the source does not exist.
 */
export async function scheduleBackfill(
  sql: Sql,
  p: { sourceId: string; since: Date; streams: readonly PollStream[] },
): Promise<BackfillResult[]> {
  return sql.begin(async (tx) => {
    const [src] = await tx`select 1 from sources where id = ${p.sourceId}`;
    if (!src) return [];
    const cursors = await tx<{ stream: PollStream; cursorTime: Date }[]>`
      insert into poll_cursors (source_id, stream, cursor_time, backfill_since)
      select ${p.sourceId}, s, ${p.since}::timestamptz, ${p.since}::timestamptz from unnest(${p.streams as string[]}::text[]) s
      on conflict (source_id, stream) do update set
        cursor_time = least(coalesce(poll_cursors.cursor_time, excluded.cursor_time), excluded.cursor_time),
        backfill_since = excluded.backfill_since, cursor_token = null, window_end = null, updated_at = now()
      returning stream, cursor_time as "cursorTime"`;
    const jobIds = await enqueuePolls(tx, cursors.map((c) => ({ sourceId: p.sourceId, stream: c.stream })));
    const out = cursors.map((c, i): BackfillResult => ({ stream: c.stream, cursorTime: c.cursorTime, jobId: jobIds[i] }));
    return out;
  });
}

export interface BackfillProgress {
  stream: string;
  /** The high-water mark reached so far. */
  cursorTime: Date | null;
  /** The stream has finished a poll since the backfill was scheduled (no window in progress). */
  done: boolean;
  lastError: string | null;
}

/**
 * Waits (up to `waitMs`) until each stream has completed a poll that started after `scheduledAt`, calling
 * `onProgress` with every stream's cursor each `pollMs`. Returns the last progress; `done` false on every stream still
 * polling at the deadline (the poll goes on; `ops status` follows it).
 */
export async function waitForBackfill(
  sql: Sql,
  p: {
    sourceId: string;
    streams: readonly PollStream[];
    scheduledAt: Date;
    waitMs: number;
    pollMs?: number;
    onProgress?: (progress: BackfillProgress[]) => void;
  },
): Promise<BackfillProgress[]> {
  const deadline = Date.now() + p.waitMs;
  for (;;) {
    const rows = await sql<BackfillProgress[]>`
      select stream, cursor_time as "cursorTime", last_error as "lastError",
             (cursor_token is null and last_success_at is not null and last_success_at >= ${p.scheduledAt}) as done
        from poll_cursors where source_id = ${p.sourceId} and stream = any(${p.streams as string[]}::text[])
       order by stream`;
    p.onProgress?.(rows);
    if ((rows.length === p.streams.length && rows.every((r) => r.done)) || Date.now() >= deadline) return rows;
    await new Promise((r) => setTimeout(r, p.pollMs ?? 500));
  }
}
