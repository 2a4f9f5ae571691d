import type { Task } from 'graphile-worker';
import { keyRingOf } from '../../config.js';
import { providerClientFor } from '../../poll/run-stream.js';
import { checkSubscription, listSubscribableSources, saveSubscriptionState, webhookUrlFor } from '../../poll/subscriptions.js';
import type { TaskDeps } from '../task-deps.js';

/**
 * Cron (every 15 minutes): reads each enabled source's webhook subscriptions at the provider (GET /webhook, one call
 * per source from its token's shared budget) and stores the state (ok, missing, disabled, topics_missing, error) that
 * `ops status` and the `wharf_webhook_subscription` gauge show. Never creates one on its own: an operator runs
 * `ops sources subscribe` (a disabled subscription cannot be re-enabled, only replaced). Payload: none.
 */
export function checkSubscriptionsTask(deps: TaskDeps): Task {
  return async (_payload, helpers) => {
    const { sql } = deps.db;
    for (const s of await listSubscribableSources(sql, keyRingOf(deps.config))) {
      const client = providerClientFor(deps.config, sql, s.apiToken);
      try {
        const check = await checkSubscription(client, webhookUrlFor(deps.config.publicUrl, s.id), helpers.abortSignal);
        await saveSubscriptionState(sql, { sourceId: s.id, check });
        if (check.state !== 'ok') helpers.logger.warn(`check_subscriptions ${s.id}: ${check.state} ${check.missingTopics.join(',')}`);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        await saveSubscriptionState(sql, { sourceId: s.id, check: null, error: message });
        helpers.logger.warn(`check_subscriptions ${s.id}: ${message}`);
      }
    }
  };
}
