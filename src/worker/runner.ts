import { Logger, run, type Runner } from 'graphile-worker';
import pg from 'pg';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { createDb } from '../db/client.js';
import { crontab } from './crontab.js';
import { buildTaskList } from './tasks.js';

export interface WorkerHandle {
  runner: Runner;
  /** Graceful: stops taking jobs, lets running ones finish (or releases them), closes pools. */
  stop(): Promise<void>;
}

/**
 * The worker role: graphile-worker (its own pg pool, LISTEN/NOTIFY, so it connects directly, never through a
 * transaction-mode pooler) plus a small postgres.js pool for the tasks' set-based SQL.
 * Connections: graphile-worker's pool (concurrency + 2) + task pool (concurrency + 1).
 */
export async function startWorker(config: Config, url: string, log: FastifyBaseLogger): Promise<WorkerHandle> {
  const db = createDb({ url, max: config.workerConcurrency + 1, prepare: true, applicationName: 'wharf-worker' });
  const logger = new Logger((scope) => (level, message, meta) => {
    const fn = level === 'error' ? log.error : level === 'warning' ? log.warn : log.debug;
    fn.call(log, { scope, ...meta }, message);
  });
  // Our own pool so an idle connection dropped by the server (restart, failover) is logged, not a crash.
  const pgPool = new pg.Pool({ connectionString: url, max: config.workerConcurrency + 2 });
  pgPool.on('error', (err) => log.warn({ err: err.message }, 'worker pool: idle connection lost'));
  const runner = await run({
    pgPool,
    concurrency: config.workerConcurrency,
    noHandleSignals: true,
    pollInterval: 2000,
    logger,
    taskList: buildTaskList({ config, db, now: () => new Date() }),
    crontab,
  });
  return {
    runner,
    async stop() {
      await runner.stop();
      await Promise.all([db.close(), pgPool.end()]);
    },
  };
}
