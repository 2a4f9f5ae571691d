import type { Test } from 'tap';
import { insertSource } from '../../src/intake/sources.js';
import { createProviderClient } from '../../src/provider/client.js';
import type { PollStream } from '../../src/poll/streams.js';
import { type PollContext, type PollSettings, pollSettings } from '../../src/poll/context.js';
import { runPollStream } from '../../src/poll/run-stream.js';
import { createRateBudget } from '../../src/provider/rate-budget.js';
import { API_VERSION } from '../../src/provider/shapes.js';
import { type SimulatorOptions, startSimulator } from '../harness/simulator/index.js';
import { freshDatabase, testConfig, testKeys } from '../helper.js';

/**
 * A fresh database with one source per simulator client (`c1`, `c2`, …, token and secret from the simulator), and
 * a poll runner whose clock is the simulator's world clock. Shared by the poll test files (not a test itself).
 */
export async function pollSetup(t: Test, sim: SimulatorOptions, env: Record<string, string> = {}) {
  const simulator = await startSimulator(sim);
  t.teardown(() => simulator.close());
  const db = await freshDatabase(t);
  const config = testConfig(db.url, {
    PROVIDER_BASE_URL: simulator.url,
    POLL_LAG_MS: '0',
    POLL_BACKFILL_DAYS: '60',
    PROVIDER_CALLS_PER_MINUTE: '60000',
    ...env,
  });
  for (const c of simulator.world.clients) {
    await insertSource(db.sql, testKeys, { id: `c${c.id}`, name: c.name, secret: c.secret, apiToken: c.token });
  }
  const now = () => new Date(simulator.world.now());

  /** A poll context for client `clientId` (its own client and rate budget), as `poll` builds it. */
  function context(clientId: number, settings: Partial<PollSettings> = {}): PollContext {
    const token = simulator.world.clients[clientId - 1].token;
    const client = createProviderClient({
      baseUrl: simulator.url,
      version: API_VERSION,
      token,
      budget: createRateBudget(db.sql, { token, callsPerMinute: config.providerCallsPerMinute }),
      retryBaseMs: 5,
    });
    return { sql: db.sql, client, sourceId: `c${clientId}`, now, settings: { ...pollSettings(config), ...settings } };
  }

  /** Polls one stream of client `clientId` with the given overrides; returns the result and the calls it made. */
  async function poll(
    clientId: number,
    stream: PollStream,
    extra: Partial<Pick<PollContext, 'signal' | 'onPage'>> & { settings?: Partial<PollSettings>; sourceId?: string } = {},
  ) {
    const ctx: PollContext = {
      ...context(clientId, extra.settings),
      sourceId: extra.sourceId ?? `c${clientId}`,
      signal: extra.signal,
      onPage: extra.onPage,
    };
    const before = simulator.stats.total;
    const result = await runPollStream(ctx, stream);
    return { ...result, calls: simulator.stats.total - before, client: ctx.client };
  }

  /** Event ids in the inbox for a source, by topic. */
  async function inboxIds(sourceId: string, topic: string): Promise<Set<string>> {
    const rows = await db.sql<{ event_id: string }[]>`
      select event_id from inbox_events where source_id = ${sourceId} and topic = ${topic}`;
    return new Set(rows.map((r) => r.event_id));
  }

  return { sim: simulator, world: simulator.world, db, sql: db.sql, config, now, poll, inboxIds, context };
}
