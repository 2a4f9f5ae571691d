import type { Config } from '../config.js';
import type { DbHandle } from '../db/client.js';

/** What every task gets besides its payload: config and the worker's own postgres.js pool. */
export interface TaskDeps {
  config: Config;
  db: DbHandle;
  now: () => Date;
}

