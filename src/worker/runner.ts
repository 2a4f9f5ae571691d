import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Logger, run, type Runner, type WorkerEvents } from 'graphile-worker';
import pg from 'pg';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { createDb } from '../db/client.js';
import { startExpressLane } from '../drain/express-lane.js';
import { assertPatched } from '../patches.js';
import { metrics } from '../metrics.js';
import { crontab } from './crontab.js';
import { startHeartbeat } from './heartbeat.js';
import { buildTaskList } from './task-list.js';

export interface WorkerHandle {
  runner: Runner;
  /** graphile-worker pool ids of this process (what jobs' `locked_by` holds). */
  workerIds(): string[];
  /**
   * Graceful: stops taking jobs and lets running ones finish until `deadline` (epoch ms); past it, fails the still
   * running jobs through graphile-worker (which unlocks them for a retry elsewhere), then removes this process's
   * heartbeat and closes both pools.
   */
  stop(deadline?: number): Promise<void>;
}

/**
 * Connections the worker role opens at most: graphile-worker's pool, the tasks' pool (a connection per running job,
 * the drain's DRAIN_CONCURRENCY loops in place of its one, and the heartbeat's), and the express lane's thread's one
 * (src/drain/express-lane.ts) when DRAIN_EXPRESS_PER_SOURCE > 0.
 */
export function workerConnectionBound(config: Config): { graphile: number; tasks: number; express: number } {
  return {
    graphile: config.workerConcurrency + 2,
    tasks: config.workerConcurrency + config.drainConcurrency,
    express: config.drainExpressPerSource > 0 ? 1 : 0,
  };
}

/**
 * The worker role: graphile-worker (its own pg pool, LISTEN/NOTIFY, so it connects directly, never through a
 * transaction-mode pooler) plus a small postgres.js pool for the tasks' set-based SQL, and a heartbeat so dead
 * workers' locks can be told from slow ones (src/ops/stale-locks.ts).
 */
/**
 * Throws unless graphile-worker carries patches/graphile-worker+0.17.3.patch: without it, a job completed or failed
 * while the database restarts is released by an un-awaited call whose rejection crashes the process.
 */
function assertWorkerPatched(): void {
  assertPatched('graphile-worker', path.dirname(createRequire(import.meta.url).resolve('graphile-worker')), ['lib.js', 'worker.js']);
}

export async function startWorker(config: Config, url: string, log: FastifyBaseLogger): Promise<WorkerHandle> {
  assertWorkerPatched();
  const bound = workerConnectionBound(config);
  const db = createDb({ url, max: bound.tasks, prepare: true, applicationName: 'wharf-worker' });
  const expressLane = bound.express > 0 ? startExpressLane({ url, applicationName: 'wharf-worker-express' }) : undefined;
  const logger = new Logger((scope) => (level, message, meta) => {
    const fn = level === 'error' ? log.error : level === 'warning' ? log.warn : log.debug;
    fn.call(log, { scope, ...meta }, message);
  });
  // Our own pool so an idle connection dropped by the server (restart, failover) is logged, not a crash.
  const pgPool = new pg.Pool({ connectionString: url, max: bound.graphile, application_name: 'wharf-worker-queue' });
  pgPool.on('error', (err) => log.warn({ err: err.message }, 'worker pool: idle connection lost'));
  pgPool.on('connect', (client) => client.on('error', (err) => log.warn({ err: err.message }, 'worker pool: connection error')));

  // Subscribed before run() so the pool's creation is seen; its id is what it locks jobs and queues with.
  const events: WorkerEvents = new EventEmitter();
  const poolIds = new Set<string>();
  events.on('pool:create', ({ workerPool }) => poolIds.add(workerPool.id));
  // Every failed attempt (it will retry, or it was the last): task identifiers are our own list, a bounded label.
  events.on('job:failed', ({ job }) => metrics.jobFailures.inc({ task: job.task_identifier }));

  const runner = await run({
    pgPool,
    concurrency: config.workerConcurrency,
    noHandleSignals: true,
    pollInterval: 2000,
    logger,
    events,
    taskList: buildTaskList({ config, db, expressLane, now: () => new Date() }),
    crontab,
  });
  const heartbeat = startHeartbeat(db.sql, {
    workerIds: () => [...poolIds],
    intervalMs: config.heartbeatIntervalMs,
    onError: (err) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'heartbeat failed'),
  });

  return {
    runner,
    workerIds: () => [...poolIds],
    async stop(deadline = Date.now() + config.shutdownTimeoutMs) {
      const graceful = runner.stop();
      // Leave a margin for the forceful path (it fails jobs in one statement) and for closing the pools.
      const forceAt = Math.max(0, deadline - Date.now() - 2000);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), forceAt);
      });
      const outcome = await Promise.race([graceful.then(() => 'done' as const), late]);
      clearTimeout(timer);
      if (outcome === 'late') {
        log.warn('worker: jobs still running at the shutdown deadline; failing them so they retry elsewhere');
        await runner.kill('shutdown deadline').catch((err) => log.error({ err: String(err) }, 'forceful stop failed'));
        await graceful.catch(() => {});
      }
      await heartbeat.stop();
      await Promise.all([db.close(), pgPool.end(), expressLane?.close()]);
    },
  };
}
