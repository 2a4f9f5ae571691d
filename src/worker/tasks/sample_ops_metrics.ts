import type { Task } from 'graphile-worker';
import { sampleOpsMetrics } from '../ops-samples.js';
import type { TaskDeps } from '../task-deps.js';

/**
 * Cron (every minute): writes the ops page's time series for the minute just ended (inbox depth, oldest pending age,
 * events applied, webhook -> applied lag, per-source arrivals and poll catches) and prunes samples older than
 * OPS_SAMPLE_RETENTION_DAYS (src/worker/ops-samples.ts). Payload: none. Idempotent: a second run in the same minute
 * writes nothing.
 */
export function sampleOpsMetricsTask(deps: TaskDeps): Task {
  return async () => {
    await sampleOpsMetrics(deps.db.sql, { now: deps.now(), retentionDays: deps.config.opsSampleRetentionDays });
  };
}
