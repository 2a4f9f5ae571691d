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
  try {
    const first = await POLLERS[stream](ctx);
    if (!first.resumed) return first;
    const fresh = await POLLERS[stream](ctx);
    return {
      stream,
      pages: first.pages + fresh.pages,
      events: first.events + fresh.events,
      inserted: first.inserted + fresh.inserted,
      resumed: true,
    };
  } catch (err) {
    if (!ctx.signal?.aborted) {
      const message = err instanceof Error ? err.message : String(err);
      await recordPollError(ctx.sql, { sourceId: ctx.sourceId, stream, message });
    }
    throw err;
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
