import type { Task } from 'graphile-worker';
import { keyRingOf } from '../../config.js';
import { kickDrain } from '../../drain/kick-drain.js';
import { pollSettings } from '../../poll/context.js';
import { reconcileSource } from '../../poll/reconcile.js';
import { findPollToken, providerClientFor } from '../../poll/run-stream.js';
import { ProviderError } from '../../provider/errors.js';
import type { TaskDeps } from '../task-deps.js';

/**
 * Hourly (crontab): each enabled source with an API token has its last RECONCILE_DAYS closed days of orders checked
 * against the provider's total-count (src/poll/reconcile.ts): one call per window when complete, a re-read of a short
 * one through the same client and rate budget. Wakes the drain when a re-read sent events to the inbox. A source the
 * provider refuses for good (bad token) is logged and skipped; anything else throws so graphile-worker retries.
 */
export function reconcileWindowsTask(deps: TaskDeps): Task {
  return async (_payload, helpers) => {
    const days = deps.config.reconcileDays;
    if (days === 0) return;
    const sources = await deps.db.sql<{ id: string }[]>`select id from sources where enabled and api_token is not null order by id`;
    let repolled = 0;
    for (const { id } of sources) {
      const token = await findPollToken(deps.db.sql, keyRingOf(deps.config), id);
      if (token === null) continue;
      const ctx = {
        sql: deps.db.sql,
        client: providerClientFor(deps.config, deps.db.sql, token),
        sourceId: id,
        now: deps.now,
        settings: pollSettings(deps.config),
        signal: helpers.abortSignal,
      };
      try {
        const windows = await reconcileSource(ctx, days);
        const short = windows.filter((w) => w.state === 'short');
        repolled += short.reduce((n, w) => n + w.repolled, 0);
        if (short.length > 0) {
          helpers.logger.info(`reconcile_windows ${id}: ${short.length} of ${windows.length} windows short, ${short.reduce((n, w) => n + w.repolled, 0)} orders re-sent`);
        }
      } catch (err) {
        if (err instanceof ProviderError && !err.retryable) {
          helpers.logger.error(`reconcile_windows ${id}: ${err.message}`);
          continue;
        }
        throw err;
      }
    }
    if (repolled > 0) await kickDrain(deps.db.sql).catch(() => {});
  };
}
