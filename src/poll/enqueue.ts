import type { Queryable } from '../db/client.js';
import type { PollStream } from './streams.js';

/** The worker task that polls one source's stream (src/worker/tasks/poll_stream.ts; payload { sourceId, stream }). */
export const POLL_TASK = 'poll_stream';

export interface PollTarget {
  sourceId: string;
  stream: PollStream;
}

/** Job key and queue of one source's stream: one job pending at a time, one running at a time. */
export const pollJobName = (p: PollTarget): string => `poll:${p.sourceId}:${p.stream}`;

/**
 * Queues a poll of each target, in one statement (the only place poll jobs are added). Each job's key and queue are
 * `poll:<source>:<stream>`: the key keeps one job pending per stream, and the named queue runs that stream's jobs one
 * at a time, so a job queued while a poll runs waits for it. `replace` (default) moves a pending job's run time to
 * now; `preserve` keeps it (the schedule must not postpone a job an operator queued). Both are graphile-worker state
 * that a crashed worker's lock release frees: there is no lock of ours to leave behind. Resolves with the job ids,
 * in the order given.
 */
export async function enqueuePolls(
  sql: Queryable,
  targets: readonly PollTarget[],
  opts: { keyMode?: 'replace' | 'preserve_run_at' } = {},
): Promise<string[]> {
  if (targets.length === 0) return [];
  const rows = await sql<{ id: string }[]>`
    select j.id::text
      from unnest(${targets.map((t) => t.sourceId)}::text[], ${targets.map((t) => t.stream)}::text[],
                  ${targets.map(pollJobName)}::text[]) with ordinality as x(source_id, stream, name, n)
     cross join lateral graphile_worker.add_job(${POLL_TASK},
         json_build_object('sourceId', x.source_id, 'stream', x.stream),
         queue_name := x.name, max_attempts := 5, job_key := x.name, job_key_mode := ${opts.keyMode ?? 'replace'}) j
     order by x.n`;
  return rows.map((r) => r.id);
}
