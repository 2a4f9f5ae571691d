import type { Task } from 'graphile-worker';
import { kindOfTopic } from '../../apply/normalise.js';
import { DrainPhases, drainInbox } from '../../drain/drain-inbox.js';
import { parseMicros } from '../../time.js';
import { metrics, tenancyMetrics } from '../../metrics.js';
import { DRAIN_JOB_KEY, DRAIN_TASK } from '../../drain/kick-drain.js';
import type { TaskDeps } from '../task-deps.js';

/**
 * `drain`: applies the inbox chunk after chunk (src/inbox/drain.ts) until it is empty or DRAIN_TIME_BUDGET_MS is
 * spent (DRAIN_CONCURRENCY chunks at once), then re-queues itself (same job key as the kicker and the cron line, so at most one drain waits). Woken by
 * the intake's kicker and by cron every minute. Payload: none (anything is ignored). Several may run at once (several
 * workers): chunks are claimed with SKIP LOCKED. A thrown error (transient database trouble) means retry; nothing of
 * the failed chunk was marked.
 */
/** SQLSTATEs of a chunk that lost on a lock (or ran out of time waiting for one): counted, then retried. */
const LOCK_FAILURES: Record<string, string> = {
  '55P03': 'lock_timeout',
  '40P01': 'deadlock',
  '40001': 'serialization',
  '57014': 'statement_timeout',
};

export function drainTask(deps: TaskDeps): Task {
  const { sql } = deps.db;
  return async (_payload, helpers) => {
    const result = await drainInbox(sql, {
      chunkSize: deps.config.drainChunkSize,
      chunkMaxBytes: deps.config.drainChunkMaxBytes,
      budgetMs: deps.config.drainTimeBudgetMs,
      concurrency: deps.config.drainConcurrency,
      expressPerSource: deps.config.drainExpressPerSource,
      expressLane: deps.expressLane,
      futureToleranceMs: deps.config.webhookToleranceMs,
      onChunk(r, ms) {
        if (r.refused) tenancyMetrics.ownershipRefused.inc(r.refused);
        if (r.clamped) tenancyMetrics.futureTimesClamped.inc(r.clamped);
        if (r.claimed > 0) {
          metrics.drainChunkSeconds.observe(ms / 1000);
          for (const phase of DrainPhases) metrics.drainPhaseSeconds.observe({ phase }, r.phases[phase] / 1000);
        }
        for (const a of r.applied)
          for (const received of a.receivedAt) {
            const us = parseMicros(received);
            if (us !== undefined) metrics.webhookToAppliedSeconds.observe(Math.max(0, a.committedAt - us / 1000) / 1000);
          }
        for (const [topic, n] of Object.entries(r.byTopic)) {
          // Unknown topics are not labels (an open set would grow the registry without bound).
          const label = topic && kindOfTopic(topic) ? topic : 'unknown';
          if (n.processed) metrics.eventsApplied.inc({ topic: label }, n.processed);
          if (n.dead) metrics.deadLetters.inc({ topic: label }, n.dead);
        }
        for (const [stream, n] of Object.entries(r.pollCatches)) metrics.pollCatches.inc({ stream }, n);
      },
    }).catch((err: unknown) => {
      const kind = LOCK_FAILURES[String((err as { code?: unknown })?.code)];
      if (kind) metrics.drainLockFailures.inc({ kind });
      throw err;
    });
    if (result.claimed > 0) {
      helpers.logger.debug(
        `drained ${result.claimed} events in ${result.chunks} chunks: ${result.processed} processed, ` +
          `${result.dead} dead (${result.refused} refused: another source's entity), ${result.ignored} ignored, ` +
          `${result.attributed} charges caught up`,
      );
    }
    if (!result.emptied) {
      await helpers.addJob(DRAIN_TASK, {}, { jobKey: DRAIN_JOB_KEY, jobKeyMode: 'preserve_run_at', maxAttempts: 25 });
    }
  };
}
