import type { Sql } from '../db/client.js';
import { toDate } from './dates.js';

import type { PollStream } from '../poll/cursors.js';
import { pollJobName } from '../worker/tasks/poll_schedule.js';

/** The poller's task (src/worker/poll_stream.ts; payload { sourceId, stream }). */
export const POLL_TASK = 'poll_stream';
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
      select ${p.sourceId}, s, ${p.since.toISOString()}::timestamptz, ${p.since.toISOString()}::timestamptz from unnest(${p.streams as string[]}::text[]) s
      on conflict (source_id, stream) do update set
        cursor_time = least(coalesce(poll_cursors.cursor_time, excluded.cursor_time), excluded.cursor_time),
        backfill_since = excluded.backfill_since, cursor_token = null, window_end = null, updated_at = now()
      returning stream, cursor_time as "cursorTime"`;
    const out: BackfillResult[] = [];
    for (const c of cursors) {
      // Same job key and queue as poll_schedule: one pending poll per stream, never two running at once.
      const name = pollJobName({ sourceId: p.sourceId, stream: c.stream });
      const [job] = await tx<{ id: string }[]>`
        select id::text from graphile_worker.add_job(${POLL_TASK},
          json_build_object('sourceId', ${p.sourceId}::text, 'stream', ${c.stream}::text),
          queue_name := ${name}, max_attempts := 5, job_key := ${name}, job_key_mode := 'replace')`;
      out.push({ stream: c.stream, cursorTime: toDate(c.cursorTime)!, jobId: job.id });
    }
    return out;
  });
}
