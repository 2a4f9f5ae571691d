import type { Task } from 'graphile-worker';
import { listDuePollStreams, type PollStream } from '../../poll/cursors.js';
import type { TaskDeps } from '../task-list.js';

/** Job key and queue of one source's stream: one job pending at a time, one running at a time. */
export function pollJobName(p: { sourceId: string; stream: PollStream }): string {
  return `poll:${p.sourceId}:${p.stream}`;
}

/**
 * Cron (every minute): enqueues a poll_stream job for every enabled source with an API token and every stream whose
 * POLL_INTERVAL_MS has passed since its last run. Each job has the job key and the queue name
 * `poll:<source>:<stream>`: the key keeps one job pending per stream (re-enqueueing updates it), and the named queue
 * runs that stream's jobs one at a time, so a job enqueued while a poll runs waits for it. Both are graphile-worker
 * state that a crashed worker's lock release (clear_stale_locks) frees; there is no lock of ours to leave behind.
 * Payload: none.
 */
export function pollScheduleTask(deps: TaskDeps): Task {
  return async (_payload, helpers) => {
    const due = await listDuePollStreams(deps.db.sql, { intervalMs: deps.config.pollIntervalMs });
    if (due.length === 0) return;
    await helpers.addJobs(
      due.map((d) => ({
        identifier: 'poll_stream',
        payload: { sourceId: d.sourceId, stream: d.stream },
        jobKey: pollJobName(d),
        queueName: pollJobName(d),
        maxAttempts: 5,
      })),
      true,
    );
  };
}
