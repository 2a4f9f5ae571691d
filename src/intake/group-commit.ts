import { DatabaseUnavailableError } from '../errors.js';
import { type InboxInsertResult, insertInboxEvents, type NewInboxEvent } from '../inbox/insert-events.js';
import type { Queryable } from '../db/client.js';
import { metrics } from '../metrics.js';

/**
 * Group commit for the intake: the rows of concurrent requests go to the database in one statement (one commit, one
 * WAL flush) instead of one each, and every request still waits for the commit of its own batch.
 *
 * No timer: a batch leaves as soon as a slot is free. Under light load each request is its own batch (no added
 * latency); under heavy load requests accumulate while `maxInFlight` batches are out, and the next batch takes them
 * all. The collection window is one event-loop turn (setImmediate), so requests parsed in the same I/O phase share a
 * batch. `maxInFlight` stays below the pool size so source look-ups and the quarantine writer always find a connection.
 */
export interface GroupCommitOptions {
  sql: Queryable;
  /** Batches in the database at once. */
  maxInFlight: number;
  maxBatchRows: number;
  /** A batch stops growing past this many body bytes (a single larger row still goes, alone). */
  maxBatchBytes: number;
  /** Rows waiting for a slot; beyond this `submit` fails at once (overload: 503 and the provider retries). */
  maxQueuedRows: number;
}

export interface GroupCommitter {
  /** Resolves once the row is committed (or was already stored); rejects with DatabaseUnavailableError otherwise. */
  submit(row: NewInboxEvent, timeoutMs: number): Promise<InboxInsertResult>;
  /** Rows waiting plus rows in flight (for tests and metrics). */
  readonly pending: number;
  /** Waits for every batch already submitted. */
  close(): Promise<void>;
}

interface Item {
  row: NewInboxEvent;
  resolve(r: InboxInsertResult): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
  /** Timed out while still queued: dropped from the next batch (its request already answered 503). */
  abandoned: boolean;
}

export function createGroupCommitter(opts: GroupCommitOptions): GroupCommitter {
  let queue: Item[] = [];
  let inFlight = 0;
  let inFlightRows = 0;
  let scheduled = false;
  const idle: (() => void)[] = [];

  const schedule = () => {
    if (scheduled || inFlight >= opts.maxInFlight || queue.length === 0) return;
    scheduled = true;
    setImmediate(flush);
  };

  function takeBatch(): Item[] {
    let bytes = 0;
    let n = 0;
    while (n < queue.length && n < opts.maxBatchRows) {
      const size = queue[n].row.body.length;
      if (n > 0 && bytes + size > opts.maxBatchBytes) break;
      bytes += size;
      n++;
    }
    const batch = queue.slice(0, n);
    queue = queue.slice(n);
    return batch.filter((i) => !i.abandoned);
  }

  function flush() {
    scheduled = false;
    while (inFlight < opts.maxInFlight && queue.length > 0) {
      const batch = takeBatch();
      if (batch.length === 0) continue;
      inFlight++;
      inFlightRows += batch.length;
      metrics.intakeCommitBatches.inc();
      insertInboxEvents(
        opts.sql,
        batch.map((i) => i.row),
      ).then(
        (results) => {
          for (const [i, item] of batch.entries()) settle(item, () => item.resolve(results[i]));
        },
        (err) => {
          for (const item of batch) settle(item, () => item.reject(new DatabaseUnavailableError({ cause: err })));
        },
      ).finally(() => {
        inFlight--;
        inFlightRows -= batch.length;
        schedule();
        notifyIdle();
      });
    }
    notifyIdle(); // a flush of abandoned items only sends nothing
  }

  function notifyIdle() {
    if (inFlight === 0 && queue.length === 0) for (const f of idle.splice(0)) f();
  }

  function settle(item: Item, f: () => void) {
    clearTimeout(item.timer);
    f();
  }

  return {
    submit(row, timeoutMs) {
      if (queue.length >= opts.maxQueuedRows) return Promise.reject(new DatabaseUnavailableError());
      return new Promise<InboxInsertResult>((resolve, reject) => {
        const item: Item = {
          row,
          resolve,
          reject,
          abandoned: false,
          // A timed-out item may still commit later (its batch is already out): harmless, the provider's retry is a
          // duplicate. It is never acknowledged, which is what matters.
          timer: setTimeout(() => {
            item.abandoned = true;
            reject(new DatabaseUnavailableError());
          }, timeoutMs),
        };
        queue.push(item);
        schedule();
      });
    },
    get pending() {
      return queue.length + inFlightRows;
    },
    close() {
      if (inFlight === 0 && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idle.push(resolve));
    },
  };
}
