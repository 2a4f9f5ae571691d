import type { Queryable, Sql } from '../db/client.js';

/**
 * The sync-run log (`poll_runs`): one row per poll run of a source's stream, written when the run ends (ok, error or
 * aborted), listed by `ops polls`, pruned after POLL_RUN_RETENTION_DAYS. A run that dies with its process (SIGKILL)
 * leaves no row; its cursor shows the resumable position.
 */

export const PollRunOutcomes = ['ok', 'error', 'aborted'] as const;
export type PollRunOutcome = (typeof PollRunOutcomes)[number];

export interface PollRun {
  sourceId: string;
  stream: string;
  startedAt: Date;
  finishedAt: Date;
  durationMs: number;
  /** The cursor's high-water mark before and after the run. */
  windowFrom: Date | null;
  windowTo: Date | null;
  pages: number;
  events: number;
  inserted: number;
  calls: number;
  throttled: number;
  providerMs: number;
  outcome: PollRunOutcome;
  /** The error's message (never a token: the provider client puts none in its errors), at most 1000 characters. */
  error: string | null;
}

export interface PollRunRow extends PollRun {
  id: number;
  sourceName: string;
}

/** Inserts one run. One statement; never throws for the caller's sake (the log must not fail a poll): see caller. */
export async function insertPollRun(sql: Queryable, r: PollRun): Promise<void> {
  await sql`
    insert into poll_runs (source_id, stream, started_at, finished_at, duration_ms, window_from, window_to, pages, events,
                           inserted, calls, throttled, provider_ms, outcome, error)
    values (${r.sourceId}, ${r.stream}, ${r.startedAt}, ${r.finishedAt}, ${Math.round(r.durationMs)}::int,
            ${r.windowFrom}, ${r.windowTo}, ${r.pages}::int, ${r.events}::int, ${r.inserted}::int, ${r.calls}::int,
            ${r.throttled}::int, ${Math.round(r.providerMs)}::int, ${r.outcome}, ${r.error?.slice(0, 1000) ?? null})`;
}

/** The newest runs first, optionally of one source, stream or outcome; `limit` rows at most. */
export async function listPollRuns(
  sql: Queryable,
  p: { sourceId?: string; stream?: string; outcome?: string; since?: Date; limit: number },
): Promise<PollRunRow[]> {
  return sql<PollRunRow[]>`
    select r.id::float8 as id, r.source_id as "sourceId", s.name as "sourceName", r.stream, r.started_at as "startedAt",
           r.finished_at as "finishedAt", r.duration_ms as "durationMs", r.window_from as "windowFrom",
           r.window_to as "windowTo", r.pages, r.events, r.inserted, r.calls, r.throttled, r.provider_ms as "providerMs",
           r.outcome, r.error
      from poll_runs r join sources s on s.id = r.source_id
     where (${p.sourceId ?? null}::text is null or r.source_id = ${p.sourceId ?? null})
       and (${p.stream ?? null}::text is null or r.stream = ${p.stream ?? null})
       and (${p.outcome ?? null}::text is null or r.outcome = ${p.outcome ?? null})
       and (${p.since ?? null}::timestamptz is null or r.started_at >= ${p.since ?? null})
     order by r.started_at desc, r.id desc
     limit ${p.limit}::int`;
}

/** Deletes runs started before `before`, `limit` rows per statement until none is left; returns how many. */
export async function prunePollRuns(sql: Sql, p: { before: Date; batchSize: number; shouldStop?: () => boolean }): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await sql`
      delete from poll_runs where id in (
        select id from poll_runs where started_at < ${p.before} order by started_at limit ${p.batchSize}::int)
      returning 1`;
    total += rows.length;
    if (rows.length < p.batchSize || p.shouldStop?.()) return total;
  }
}

/** The stream's high-water mark now (null: never polled). */
export async function readCursorTime(sql: Queryable, sourceId: string, stream: string): Promise<Date | null> {
  const [row] = await sql<{ cursorTime: Date | null }[]>`
    select cursor_time as "cursorTime" from poll_cursors where source_id = ${sourceId} and stream = ${stream}`;
  return row?.cursorTime ?? null;
}
