import { type Config, DAY, MINUTE } from '../config.js';
import type { Sql } from '../db/client.js';
import type { ProviderClient } from '../provider/client.js';
import type { PollStream } from './streams.js';

/** What every stream's poll needs: the database, a client for one source's token, and the clock. */
export interface PollContext {
  sql: Sql;
  client: ProviderClient;
  sourceId: string;
  /** The provider's clock as wharf sees it (tests pass the simulator's). */
  now: () => Date;
  settings: PollSettings;
  /** Aborts the poll between or during requests; committed pages stay committed. */
  signal?: AbortSignal;
  /** Called after each page is committed, with what it stored. */
  onPage?: (page: PageReport) => void | Promise<void>;
}

export interface PollSettings {
  /** A window starts this far before the last one ended: late writes and clock skew land in it. */
  overlapMs: number;
  /** A window ends this far behind now, so writes in flight at the provider are not half-seen. */
  lagMs: number;
  /** The first poll of a stream (no cursor, no backfill_since) reaches this far back. */
  backfillMs: number;
  /** Billing: each poll re-reads charge dates this far behind its last end (transactions change after creation). */
  billingRescanMs: number;
  /** Timelines fetched per run at most: a share of the budget, so orders and billing are not starved. */
  timelineCallsPerRun: number;
  /** Returns fetched by id per run at most (a smaller share: they are rare, and a 404 is remembered). */
  returnCallsPerRun: number;
  /** Orders per page (the API's maximum, 250, unless a test wants more pages). */
  orderPageLimit?: number;
  /** Transactions per page (1000 at most). */
  transactionPageSize?: number;
}

export interface PageReport {
  stream: PollStream;
  /** 1-based, within its window (a run that resumed a window counts the fresh one from 1 again). */
  page: number;
  events: number;
  inserted: number;
  /** Time this page spent in wharf (building events, the commit), not waiting for the provider or the budget. */
  wharfMs: number;
}

export interface PollResult {
  stream: PollStream;
  pages: number;
  events: number;
  /** Events new to the inbox. */
  inserted: number;
  /** True when this run finished a window an earlier run had left open (then went on with a fresh one). */
  resumed: boolean;
}

/**
 * Settings from config. A run's timeline calls are half of what the budget allows in one poll interval, its return
 * fetches a quarter: with orders and billing (one call each when idle) the streams stay within one interval's budget.
 */
export function pollSettings(config: Config): PollSettings {
  const callsPerInterval = (config.providerCallsPerMinute * config.pollIntervalMs) / MINUTE;
  return {
    overlapMs: config.pollOverlapMs,
    lagMs: config.pollLagMs,
    backfillMs: config.pollBackfillDays * DAY,
    billingRescanMs: config.billingRescanDays * DAY,
    timelineCallsPerRun: Math.max(1, Math.floor(callsPerInterval / 2)),
    returnCallsPerRun: Math.max(1, Math.floor(callsPerInterval / 4)),
  };
}

/** Where a window with no committed position starts: overlap before the last end, else the backfill horizon. */
export function windowStart(
  w: { cursorTime: Date | null; backfillSince: Date | null },
  now: Date,
  settings: PollSettings,
  reachBackMs: number,
): Date {
  if (w.backfillSince) return w.backfillSince;
  if (w.cursorTime) return new Date(w.cursorTime.getTime() - reachBackMs);
  return new Date(now.getTime() - settings.backfillMs);
}
