import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Sql } from '../db/client.js';
import { MINUTE } from '../config.js';

/**
 * One request budget per provider API token, kept in `rate_budgets` so every worker process spends from the same
 * bucket. The provider allows 150 calls per sliding minute per token; we spend at most PROVIDER_CALLS_PER_MINUTE.
 *
 * A token bucket refilling at R calls per minute with capacity C allows at most C + R calls in any 60 s, so C is kept
 * to a tenth of R: with the default R = 120 that is 132 in the worst minute, below the provider's 150. Each call takes
 * a token in one statement (refill computed in SQL from `refilled_at`, so no process needs a clock of its own or a
 * lock beyond the row's); an empty bucket answers how long to wait. A 429 sets `blocked_until` for every process.
 */

export interface BudgetShape {
  /** Tokens the bucket holds at most (the burst). */
  capacity: number;
  perMinute: number;
}

/** The bucket for a per-minute budget: capacity a tenth of it (at least 1), see above. */
export function budgetShape(callsPerMinute: number): BudgetShape {
  return { capacity: Math.max(1, Math.ceil(callsPerMinute / 10)), perMinute: callsPerMinute };
}

/** The most calls a budget can spend in any window of `windowMs` (the bucket full at its start). */
export function maxCallsInWindow(shape: BudgetShape, windowMs = MINUTE): number {
  return Math.floor(shape.capacity + (shape.perMinute * windowMs) / MINUTE);
}

/** The row key for a token: its SHA-256, so the table (and status output) never holds the token itself. */
export function rateBudgetKey(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export interface TakeResult {
  granted: boolean;
  /** When refused: how long until a token is due (or the block ends). 0 when granted. */
  waitMs: number;
}

/**
 * Takes one token from the bucket `key` if one is there, in one statement: creates the bucket full on first use,
 * refills it for the time since `refilled_at` (capped at capacity), and refuses while `blocked_until` is ahead.
 * Guarantees: concurrent callers (any process) never take more than the bucket holds; the UPDATE's condition is
 * re-checked against the row's latest version under its lock. A refusal changes nothing. `waitMs` of a refusal is
 * an estimate from the statement's snapshot: retry after it.
 */
export async function takeRateToken(sql: Sql, p: { key: string } & BudgetShape): Promise<TakeResult> {
  const perSecond = p.perMinute / 60;
  const [row] = await sql<{ granted: boolean; wait_ms: number | null }[]>`
    with t as (select clock_timestamp() as at),
    seeded as (
      insert into rate_budgets (key, tokens, refilled_at, calls)
      select ${p.key}, ${p.capacity - 1}::float8, t.at, 1 from t
      on conflict (key) do nothing
      returning 1),
    taken as (
      update rate_budgets b
         set tokens = least(${p.capacity}::float8,
                            b.tokens::float8 + extract(epoch from t.at - b.refilled_at)::float8 * ${perSecond}::float8) - 1,
             refilled_at = t.at,
             calls = b.calls + 1
        from t
       where b.key = ${p.key}
         and (b.blocked_until is null or b.blocked_until <= t.at)
         and least(${p.capacity}::float8,
                   b.tokens::float8 + extract(epoch from t.at - b.refilled_at)::float8 * ${perSecond}::float8) >= 1
      returning 1)
    select exists (select 1 from seeded) or exists (select 1 from taken) as granted,
           (select greatest(0,
                   extract(epoch from coalesce(b.blocked_until, t.at) - t.at)::float8 * 1000,
                   (1 - least(${p.capacity}::float8,
                              b.tokens::float8 + extract(epoch from t.at - b.refilled_at)::float8 * ${perSecond}::float8))
                     / ${perSecond}::float8 * 1000)
              from rate_budgets b, t where b.key = ${p.key}) as wait_ms`;
  return row.granted ? { granted: true, waitMs: 0 } : { granted: false, waitMs: Math.ceil(row.wait_ms ?? 0) };
}

/**
 * The provider answered 429: no process calls with this token for `retryAfterMs`, and the bucket restarts empty when
 * the block ends (no burst right after it). A longer block already in place is kept. Counts the 429 in `throttled`.
 */
export async function blockRateBudget(sql: Sql, p: { key: string; retryAfterMs: number }): Promise<void> {
  await sql`
    with t as (select clock_timestamp() + ${p.retryAfterMs}::float8 * interval '1 millisecond' as until)
    insert into rate_budgets as b (key, tokens, refilled_at, blocked_until, throttled)
    select ${p.key}, 0, t.until, t.until, 1 from t
    on conflict (key) do update
       set blocked_until = greatest(b.blocked_until, excluded.blocked_until),
           refilled_at = greatest(b.refilled_at, excluded.refilled_at),
           tokens = 0,
           throttled = b.throttled + 1`;
}

/**
 * The provider says `remaining` calls are left in its window (someone else may share the token): the bucket keeps
 * no more than that. Never raises the level.
 */
export async function clampRateBudget(sql: Sql, p: { key: string; remaining: number } & BudgetShape): Promise<void> {
  const perSecond = p.perMinute / 60;
  await sql`
    update rate_budgets b
       set tokens = ${p.remaining}::float8, refilled_at = clock_timestamp()
     where b.key = ${p.key}
       and least(${p.capacity}::float8,
                 b.tokens::float8 + extract(epoch from clock_timestamp() - b.refilled_at)::float8 * ${perSecond}::float8)
           > ${p.remaining}::float8`;
}

export interface RateBudgetStats {
  /** Tokens taken (calls allowed). */
  taken: number;
  /** Time spent waiting for a token or a block to end. */
  waitedMs: number;
  /** 429s reported through block(). */
  blocks: number;
}

/** What the provider client spends from: one token per HTTP attempt. */
export interface RateBudget {
  /** Resolves once a call may be made (a token is taken); rejects if `signal` aborts while waiting. */
  acquire(signal?: AbortSignal): Promise<void>;
  /** A 429 said to wait `retryAfterMs`: every process waits. */
  block(retryAfterMs: number): Promise<void>;
  /** The provider's remaining-calls header. */
  observeRemaining(remaining: number): Promise<void>;
  readonly stats: RateBudgetStats;
}

export interface RateBudgetOptions {
  token: string;
  callsPerMinute: number;
  /**
   * Overrides the bucket's capacity (default: budgetShape). A benchmark that runs the clock faster keeps the real
   * capacity so that its burst is not scaled up with its rate.
   */
  capacity?: number;
  /** Longest single sleep before asking again (a block may be lifted early by nobody, but a clock may jump). */
  maxSleepMs?: number;
}

/** A budget for one token over the shared table. Waits add a little jitter so processes do not ask in lockstep. */
export function createRateBudget(sql: Sql, options: RateBudgetOptions): RateBudget {
  const key = rateBudgetKey(options.token);
  const shape = { ...budgetShape(options.callsPerMinute), ...(options.capacity ? { capacity: options.capacity } : {}) };
  const maxSleepMs = options.maxSleepMs ?? 5000;
  const stats: RateBudgetStats = { taken: 0, waitedMs: 0, blocks: 0 };
  return {
    stats,
    async acquire(signal) {
      for (;;) {
        signal?.throwIfAborted();
        const r = await takeRateToken(sql, { key, ...shape });
        if (r.granted) {
          stats.taken++;
          return;
        }
        const ms = Math.min(maxSleepMs, r.waitMs) + Math.floor(Math.random() * Math.min(20, 1 + r.waitMs / 10));
        const started = performance.now();
        await delay(ms, undefined, { signal });
        stats.waitedMs += performance.now() - started;
      }
    },
    async block(retryAfterMs) {
      stats.blocks++;
      await blockRateBudget(sql, { key, retryAfterMs });
    },
    async observeRemaining(remaining) {
      if (remaining < shape.capacity) await clampRateBudget(sql, { key, remaining, ...shape });
    },
  };
}
