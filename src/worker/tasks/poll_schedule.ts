import type { Task } from 'graphile-worker';
import { listDuePollStreams } from '../../poll/cursors.js';
import { enqueuePolls } from '../../poll/enqueue.js';
import { planPollIntervals, scheduleSlackMs } from '../../poll/intervals.js';
import type { TaskDeps } from '../task-deps.js';

/**
 * Cron (every minute): chooses each polled source's interval from its webhook trust (src/poll/intervals.ts, recorded
 * in poll_intervals), then queues a poll_stream job for every enabled source with an API token and every stream whose
 * interval has passed since its last run (src/poll/enqueue.ts: one job pending and one running per stream). A job
 * already pending keeps its run time. Payload: none.
 */
export function pollScheduleTask(deps: TaskDeps): Task {
  return async () => {
    await planPollIntervals(deps.db.sql, deps.config);
    const due = await listDuePollStreams(deps.db.sql, { intervalMs: deps.config.pollIntervalMs, slackMs: scheduleSlackMs(deps.config) });
    await enqueuePolls(deps.db.sql, due, { keyMode: 'preserve_run_at' });
  };
}
