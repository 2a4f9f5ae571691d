import type { Task } from 'graphile-worker';
import { keyRingOf } from '../../config.js';
import { kickDrain } from '../../drain/kick-drain.js';
import { resolveDue } from '../../poll/resolve.js';
import { findPollToken, providerClientFor } from '../../poll/run-stream.js';
import type { TaskDeps } from '../task-deps.js';

/** The payload if it is one (it is `unknown` at run time), else null. */
export function parseResolvePayload(payload: unknown): { sourceId: string } | null {
  if (typeof payload !== 'object' || payload === null) return null;
  const { sourceId } = payload as Record<string, unknown>;
  return typeof sourceId === 'string' && sourceId !== '' ? { sourceId } : null;
}

/**
 * Fetches a source's due resolve requests by id (src/poll/resolve.ts), queued by the drain (job key and queue
 * `resolve:<source>`) or by resolve_schedule. Without an API token the requests become dead letters saying so.
 * Wakes the drain when it stored something new; queues itself again when due requests remain.
 */
export function resolveResourcesTask(deps: TaskDeps): Task {
  return async (payload, helpers) => {
    const p = parseResolvePayload(payload);
    if (!p) {
      helpers.logger.error(`resolve_resources: invalid payload, dropped: ${JSON.stringify(payload)?.slice(0, 200)}`);
      return;
    }
    const token = await findPollToken(deps.db.sql, keyRingOf(deps.config), p.sourceId);
    const client = token === null ? null : providerClientFor(deps.config, deps.db.sql, token);
    let inserted = 0;
    try {
      const r = await resolveDue({ sql: deps.db.sql, sourceId: p.sourceId, client, now: deps.now, signal: helpers.abortSignal });
      inserted = r.inserted;
      if (r.fetched + r.dead > 0) {
        helpers.logger.info(`resolve_resources ${p.sourceId}: ${r.fetched} fetched, ${r.dead} dead, ${r.deferred} deferred`);
      }
    } finally {
      if (inserted > 0) await kickDrain(deps.db.sql).catch(() => undefined);
    }
  };
}
