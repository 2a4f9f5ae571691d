import type { Task } from 'graphile-worker';
import { kickDrain } from '../../drain/kick-drain.js';
import { isPollStream, type PollStream } from '../../poll/streams.js';
import { ProviderError } from '../../provider/errors.js';
import { pollSourceStream } from '../../poll/run-stream.js';
import type { TaskDeps } from '../task-deps.js';

export interface PollStreamPayload {
  sourceId: string;
  stream: PollStream;
}

/** The payload if it is one (it is `unknown` at run time), else null. */
export function parsePollStreamPayload(payload: unknown): PollStreamPayload | null {
  if (typeof payload !== 'object' || payload === null) return null;
  const { sourceId, stream } = payload as Record<string, unknown>;
  if (typeof sourceId !== 'string' || sourceId === '' || !isPollStream(stream)) return null;
  return { sourceId, stream };
}

/**
 * Polls one source's stream (enqueued by poll_schedule, in the queue `poll:<source>:<stream>` so two polls of one
 * stream never overlap). Idempotent: events carry deterministic ids and a killed run resumes its cursor.
 * A payload that can never run, a source with nothing to poll, or a provider refusal that retrying cannot fix
 * (bad token, bad request) is logged (and kept in poll_cursors.last_error) and completes; anything else throws so
 * graphile-worker retries with backoff.
 * Once the run ends (even failed), if its committed pages brought events new to the inbox, it wakes the drain (the
 * intake's job key, so it coalesces with a drain already queued): polled events do not wait for the cron minute.
 */
export function pollStreamTask(deps: TaskDeps): Task {
  return async (payload, helpers) => {
    const p = parsePollStreamPayload(payload);
    if (!p) {
      helpers.logger.error(`poll_stream: invalid payload, dropped: ${JSON.stringify(payload)?.slice(0, 200)}`);
      return;
    }
    let committed = 0;
    try {
      const r = await pollSourceStream({
        config: deps.config,
        sql: deps.db.sql,
        sourceId: p.sourceId,
        stream: p.stream,
        now: deps.now,
        signal: helpers.abortSignal,
        onPage: (page) => {
          committed += page.inserted;
        },
      });
      if (r === null) helpers.logger.info(`poll_stream: source ${p.sourceId} has no enabled API token, skipped`);
      else if (r.inserted > 0 || r.pages > 1) {
        helpers.logger.info(
          `poll_stream ${p.sourceId}/${p.stream}: ${r.pages} pages, ${r.events} events, ${r.inserted} new` +
            (r.resumed ? ' (resumed)' : ''),
        );
      }
    } catch (err) {
      if (err instanceof ProviderError && !err.retryable) {
        helpers.logger.error(`poll_stream ${p.sourceId}/${p.stream}: ${err.message}`);
        return;
      }
      throw err;
    } finally {
      // A lost kick costs at most the drain's cron minute: log it, and keep the poll's own outcome.
      if (committed > 0) {
        await kickDrain(deps.db.sql).catch((err) =>
          helpers.logger.warn(`poll_stream ${p.sourceId}/${p.stream}: drain kick failed: ${err instanceof Error ? err.message : err}`),
        );
      }
    }
  };
}
