import type { Task, TaskList } from 'graphile-worker';
import type { TaskDeps } from './task-deps.js';
import { checkSubscriptionsTask } from './tasks/check_subscriptions.js';
import { clearStaleLocksTask } from './tasks/clear_stale_locks.js';
import { drainTask } from './tasks/drain.js';
import { pollScheduleTask } from './tasks/poll_schedule.js';
import { pollStreamTask } from './tasks/poll_stream.js';
import { pruneInboxTask } from './tasks/prune_inbox.js';
import { reconcileWindowsTask } from './tasks/reconcile_windows.js';
import { resolveResourcesTask } from './tasks/resolve_resources.js';
import { resolveScheduleTask } from './tasks/resolve_schedule.js';
import { sampleOpsMetricsTask } from './tasks/sample_ops_metrics.js';

/**
 * Every task the worker runs, by identifier (= its file name in tasks/). Each factory binds its deps once.
 * Tasks validate their payload first (it is `unknown`), await everything, and are idempotent.
 */
export function buildTaskList(deps: TaskDeps): TaskList {
  const tasks: Record<string, Task> = {
    check_subscriptions: checkSubscriptionsTask(deps),
    clear_stale_locks: clearStaleLocksTask(deps),
    drain: drainTask(deps),
    prune_inbox: pruneInboxTask(deps),
    poll_schedule: pollScheduleTask(deps),
    poll_stream: pollStreamTask(deps),
    reconcile_windows: reconcileWindowsTask(deps),
    resolve_resources: resolveResourcesTask(deps),
    resolve_schedule: resolveScheduleTask(deps),
    sample_ops_metrics: sampleOpsMetricsTask(deps),
  };
  return tasks;
}
