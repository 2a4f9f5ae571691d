import type { Queryable } from '../db/client.js';
import { listPollRuns, type PollRunRow } from '../poll/poll-runs.js';
import { formatAge, plain, table } from './format.js';

/** `ops polls`: the newest poll runs (the sync-run log), as rows for JSON and as a table for people. */

export interface PollsQuery {
  sourceId?: string;
  stream?: string;
  outcome?: string;
  since?: Date;
  limit: number;
}

export function readPollRuns(sql: Queryable, q: PollsQuery): Promise<PollRunRow[]> {
  return listPollRuns(sql, q);
}

export function pollRunsTable(runs: PollRunRow[]): string {
  return table(
    ['started', 'source', 'stream', 'outcome', 'duration', 'window (cursor before → after)', 'pages', 'events', 'new', 'calls', '429s', 'provider', 'error'],
    runs.map((r) => [
      r.startedAt.toISOString(),
      r.sourceName,
      r.stream,
      r.outcome,
      formatAge(r.durationMs / 1000) === '0s' ? `${r.durationMs} ms` : formatAge(r.durationMs / 1000),
      `${r.windowFrom?.toISOString() ?? 'start'} → ${r.windowTo?.toISOString() ?? '-'}`,
      r.pages,
      r.events,
      r.inserted,
      r.calls,
      r.throttled,
      `${r.providerMs} ms`,
      plain(r.error?.slice(0, 120)),
    ]),
  );
}
