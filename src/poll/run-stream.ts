import { type Config, keyRingOf } from '../config.js';
import { openApiToken } from '../secrets/cipher.js';
import type { KeyRing } from '../key-ring.js';
import type { Sql } from '../db/client.js';
import { createProviderClient, type ProviderClient } from '../provider/client.js';
import { recordPollError } from './cursors.js';
import type { PollStream } from './streams.js';
import { type PageReport, type PollContext, type PollResult, pollSettings } from './context.js';
import { pollOrders } from './orders.js';
import { pollReturns } from './returns.js';
import { pollTimelines } from './timelines.js';
import { pollTransactions } from './transactions.js';
import { createRateBudget } from '../provider/rate-budget.js';
import { metrics } from '../metrics.js';
import { insertPollRun, type PollRunOutcome, readCursorTime } from './poll-runs.js';

const POLLERS: Record<PollStream, (ctx: PollContext) => Promise<PollResult>> = {
  orders: pollOrders,
  transactions: pollTransactions,
  timelines: pollTimelines,
  returns: pollReturns,
};

/**
 * Runs one stream's poll; a failure is recorded on its cursor (message only) and rethrown for the job to retry.
 * A run that finished a window an earlier run left open (a killed poll) goes on with one fresh window up to
 * now - POLL_LAG_MS, so the cursor reaches now in this run, not at the next interval. At most one extra window: a run
 * stays bounded, and a run that resumed nothing costs what it always did (one request when nothing changed).
 */
export async function runPollStream(ctx: PollContext, stream: PollStream): Promise<PollResult> {
  // The sync-run log and its metric: what the run did, however it ended.
  const startedAt = new Date();
  const started = performance.now();
  const before = { ...ctx.client.stats };
  const windowFrom = await readCursorTime(ctx.sql, ctx.sourceId, stream).catch(() => null);
  const seen = { pages: 0, events: 0, inserted: 0 };
  const counted: PollContext = {
    ...ctx,
    onPage(page) {
      seen.pages++;
      seen.events += page.events;
      seen.inserted += page.inserted;
      return ctx.onPage?.(page);
    },
  };
  let outcome: PollRunOutcome = 'ok';
  let error: string | null = null;
  try {
    const first = await POLLERS[stream](counted);
    if (!first.resumed) return first;
    const fresh = await POLLERS[stream](counted);
    return {
      stream,
      pages: first.pages + fresh.pages,
      events: first.events + fresh.events,
      inserted: first.inserted + fresh.inserted,
      resumed: true,
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    outcome = ctx.signal?.aborted ? 'aborted' : 'error';
    error = message;
    if (!ctx.signal?.aborted) await recordPollError(ctx.sql, { sourceId: ctx.sourceId, stream, message });
    throw err;
  } finally {
    const durationMs = performance.now() - started;
    metrics.pollRunSeconds.observe({ stream, outcome }, durationMs / 1000);
    const stats = ctx.client.stats;
    const log = async () => insertPollRun(ctx.sql, {
      sourceId: ctx.sourceId,
      stream,
      startedAt,
      finishedAt: new Date(),
      durationMs,
      windowFrom,
      windowTo: await readCursorTime(ctx.sql, ctx.sourceId, stream),
      ...seen,
      calls: stats.calls - before.calls,
      throttled: stats.throttled - before.throttled,
      providerMs: stats.providerMs - before.providerMs,
      outcome,
      error,
    });
    await log().catch(() => {}); // the log is best effort: it never turns a poll's result into a failure
  }
}

/** The API token of an enabled source, or null (disabled, webhook-only, or gone): nothing to poll. */
export async function findPollToken(sql: Sql, keys: KeyRing, sourceId: string): Promise<string | null> {
  const [row] = await sql<{ apiToken: string | null }[]>`
    select api_token as "apiToken" from sources where id = ${sourceId} and enabled`;
  // Stored encrypted (src/secrets/cipher.ts); decrypted only here, for the client's header.
  return row?.apiToken ? openApiToken(keys, sourceId, row.apiToken) : null;
}

/** A provider client for one token, spending from that token's shared budget. */
export function providerClientFor(config: Config, sql: Sql, token: string): ProviderClient {
  return createProviderClient({
    baseUrl: config.providerBaseUrl,
    version: config.providerApiVersion,
    token,
    budget: createRateBudget(sql, { token, callsPerMinute: config.providerCallsPerMinute }),
  });
}

/**
 * Polls one source's stream as a job does: looks up its token, builds the client, runs the stream.
 * Returns null when the source has nothing to poll.
 */
export async function pollSourceStream(p: {
  config: Config;
  sql: Sql;
  sourceId: string;
  stream: PollStream;
  now: () => Date;
  signal?: AbortSignal;
  onPage?: (page: PageReport) => void | Promise<void>;
}): Promise<PollResult | null> {
  const token = await findPollToken(p.sql, keyRingOf(p.config), p.sourceId);
  if (token === null) return null;
  const client = providerClientFor(p.config, p.sql, token);
  const ctx: PollContext = {
    sql: p.sql,
    client,
    sourceId: p.sourceId,
    now: p.now,
    settings: pollSettings(p.config),
    signal: p.signal,
    onPage: p.onPage,
  };
  return runPollStream(ctx, p.stream);
}
