import type { Task } from 'graphile-worker';
import { DAY } from '../../config.js';
import { pruneInbox } from '../../inbox/prune.js';
import { prunePollRuns } from '../../poll/poll-runs.js';
import type { TaskDeps } from '../task-deps.js';

/** Rows per DELETE: small enough that each statement holds its row locks for milliseconds. */
export const PRUNE_BATCH_SIZE = 5000;
/** One run's time budget; the next hourly run continues. */
const PRUNE_BUDGET_MS = 60_000;

/**
 * Cron (hourly): deletes processed inbox rows older than INBOX_RETENTION_DAYS, dead and ignored ones older than
 * DEAD_RETENTION_DAYS, quarantine samples and counters older than QUARANTINE_RETENTION_DAYS, poll_runs older than
 * POLL_RUN_RETENTION_DAYS, in bounded batches (src/inbox/prune.ts, src/poll/poll-runs.ts). Payload: none. Idempotent;
 * stops early on shutdown.
 */
export function pruneInboxTask(deps: TaskDeps): Task {
  return async (_payload, helpers) => {
    const deadline = Date.now() + PRUNE_BUDGET_MS;
    const r = await pruneInbox(deps.db.sql, {
      processedDays: deps.config.inboxRetentionDays,
      deadDays: deps.config.deadRetentionDays,
      quarantineDays: deps.config.quarantineRetentionDays,
      batchSize: PRUNE_BATCH_SIZE,
      now: deps.now(),
      shouldStop: () => Date.now() > deadline || helpers.abortSignal?.aborted === true,
    });
    const pollRuns = await prunePollRuns(deps.db.sql, {
      before: new Date(deps.now().getTime() - deps.config.pollRunRetentionDays * DAY),
      batchSize: PRUNE_BATCH_SIZE,
      shouldStop: () => Date.now() > deadline || helpers.abortSignal?.aborted === true,
    });
    if (r.processed + r.deadOrIgnored + r.quarantine + pollRuns > 0 || !r.complete) {
      helpers.logger.info(
        `pruned ${r.processed} processed, ${r.deadOrIgnored} dead/ignored inbox rows, ${r.quarantine} quarantine rows, ` +
          `${pollRuns} poll runs` +
          (r.complete ? '' : ' (budget used up; the next run continues)'),
      );
    }
  };
}
