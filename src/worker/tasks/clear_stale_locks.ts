import type { Task } from 'graphile-worker';
import { metrics } from '../../metrics.js';
import { releaseStaleLocks } from '../stale-locks.js';
import type { TaskDeps } from '../task-deps.js';

/**
 * Cron (every 2 minutes): releases the locks of workers whose heartbeat is older than STALE_LOCK_AFTER_MS, so a killed
 * worker's jobs wait minutes, not graphile-worker's 4 hours. Payload: none (cron's is ignored). Idempotent.
 */
export function clearStaleLocksTask(deps: TaskDeps): Task {
  return async (_payload, helpers) => {
    const released = await releaseStaleLocks(deps.db.sql, {
      deadAfterMs: deps.config.staleLockAfterMs,
      releasedBy: 'cron:clear_stale_locks',
    });
    for (const r of released) {
      metrics.staleLocksReleased.inc(r.jobIds.length + r.queueNames.length);
      helpers.logger.warn(
        `released locks of dead worker ${r.workerId}: jobs [${r.jobIds.join(', ')}], queues [${r.queueNames.join(', ')}]`,
      );
    }
  };
}
