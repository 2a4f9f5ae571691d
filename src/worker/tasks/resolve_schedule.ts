import type { Task } from 'graphile-worker';
import { listSourcesWithDueResolves } from '../../poll/resolve.js';
import { RESOLVE_TASK } from '../../poll/resolve-queue.js';
import type { TaskDeps } from '../task-deps.js';

/** Cron safety net (every minute): a resolve job for each source with due requests (a lost or failed job). */
export function resolveScheduleTask(deps: TaskDeps): Task {
  return async (_payload, helpers) => {
    for (const sourceId of await listSourcesWithDueResolves(deps.db.sql, deps.now())) {
      await helpers.addJob(RESOLVE_TASK, { sourceId }, {
        queueName: `resolve:${sourceId}`,
        jobKey: `resolve:${sourceId}`,
        jobKeyMode: 'preserve_run_at',
        maxAttempts: 10,
      });
    }
  };
}
