import type { Config } from '../config.js';
import type { DbHandle } from '../db/client.js';
import type { ExpressLane } from '../drain/express-lane.js';

/** What every task gets besides its payload: config and the worker's own postgres.js pool. */
export interface TaskDeps {
  config: Config;
  db: DbHandle;
  /** The drain's express loop's thread (DRAIN_EXPRESS_PER_SOURCE > 0); absent: the loop runs in the drain's event loop. */
  expressLane?: ExpressLane;
  now: () => Date;
}

