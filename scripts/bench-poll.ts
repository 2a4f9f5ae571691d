/**
 * `npm run bench:poll`: catch-up after a 24 h webhook outage, by the orders stream alone.
 *
 * - A durable PostgreSQL: DATABASE_URL, else an embedded one (fsync on) in a temp directory on a free port.
 * - The simulator with one account whose orders have one shipment each (so changed shipments = changed orders),
 *   polled once before the outage; then 24 h of world time change ~50,000 shipments (new and updated), and one poll
 *   catches up.
 * - Time runs SPEED times faster than real (BENCH_POLL_SPEED, default 10): the budget refills at 120 × SPEED calls
 *   per minute but keeps the real capacity (12), and the simulator's limit is 150 × SPEED per minute. Dividing call
 *   times by SPEED gives what the real 120/min budget would do, so the busiest real minute is measured, not assumed.
 * Figures: calls against the minimum ceil(N / 250), wharf's own time per page (building events + the page's commit)
 * against the provider's (HTTP round trip and body) and the budget's waits.
 * Last line: {"bench":"poll","changed","calls","min_calls","call_ratio","max_calls_per_min_at_real_limit","wharf_ms_per_page"}.
 */
import { createDb } from '../src/db/client.js';
import { throwawayDatabase } from '../src/db/embedded.js';
import { runMigrations } from '../src/db/migrate.js';
import { insertSource } from '../src/intake/sources.js';
import { createProviderClient } from '../src/provider/client.js';
import { type PollSettings, pollSettings } from '../src/poll/context.js';
import { runPollStream } from '../src/poll/run-stream.js';
import { budgetShape, createRateBudget, maxCallsInWindow } from '../src/provider/rate-budget.js';
import { API_VERSION } from '../src/provider/shapes.js';
import { startSimulator } from '../test/harness/simulator/index.js';
import { HOUR, keyRingOf, loadConfig, MINUTE } from '../src/config.js';
import { withKeyRing } from '../src/secrets/key-file.js';

const REAL_BUDGET = 120;
const REAL_LIMIT = 150;
const SPEED = Number(process.env.BENCH_POLL_SPEED ?? 10);

async function main() {
  const { url: dbUrl, stop: stopDb } = await throwawayDatabase('bench-poll', { url: process.env.DATABASE_URL, durable: true });
  const sim = await startSimulator({
    worldOptions: { seed: 1, clients: 1, ordersPerClient: 2000, maxShipmentsPerOrder: 1 },
    rateLimit: { limit: REAL_LIMIT * SPEED, windowMs: MINUTE },
  });
  const db = createDb({ url: dbUrl, max: 4, prepare: true });
  try {
    await runMigrations(dbUrl);
    const { world } = sim;
    const token = world.clients[0].token;
    const config = withKeyRing(loadConfig({ DATABASE_URL: dbUrl, PROVIDER_BASE_URL: sim.url }));
    const sourceId = await insertSource(db.sql, keyRingOf(config), {
      name: `bench-poll-${Date.now()}`,
      secret: world.clients[0].secret,
      apiToken: token,
    });
    const settings: PollSettings = pollSettings(config);
    const callTimes: number[] = [];
    const observe: typeof fetch = (input, init) => {
      callTimes.push(performance.now());
      return fetch(input, init);
    };
    const budget = createRateBudget(db.sql, {
      token,
      callsPerMinute: REAL_BUDGET * SPEED,
      capacity: budgetShape(REAL_BUDGET).capacity,
    });
    const client = createProviderClient({ baseUrl: sim.url, version: API_VERSION, token, budget, fetch: observe });
    const now = () => new Date(world.now());
    const wharfMs: number[] = [];
    const ctx = {
      sql: db.sql,
      client,
      sourceId,
      now,
      settings,
      onPage: (p: { wharfMs: number }) => void wharfMs.push(p.wharfMs),
    };

    // Before the outage: caught up.
    world.advance(MINUTE);
    await runPollStream(ctx, 'orders');
    const outageStart = world.now();

    // 24 hours of changes nobody announced: about 50,000 shipments created or moved on (counted, not assumed).
    const changedSince = () =>
      world.ordersByLastUpdate(1).filter((o) => Date.parse(o.last_update_at ?? '') > outageStart).length;
    for (let hour = 0; hour < 24; hour++) {
      world.step({ newOrders: 2080, updates: 1100, billing: 0, durationMs: HOUR });
    }
    const changed = changedSince();
    world.advance(MINUTE);
    process.stdout.write(`outage: ${changed} shipments changed in 24 h of world time; catching up…\n`);

    const calls0 = client.stats.calls;
    const provider0 = client.stats.providerMs;
    const waited0 = budget.stats.waitedMs;
    wharfMs.length = 0;
    callTimes.length = 0;
    const started = performance.now();
    const result = await runPollStream(ctx, 'orders');
    const wallMs = performance.now() - started;
    const calls = client.stats.calls - calls0;
    const minCalls = Math.ceil(changed / 250);

    const [{ found }] = await db.sql<{ found: number }[]>`
      select count(distinct (body::jsonb ->> 'id'))::int as found from inbox_events
       where source_id = ${sourceId} and topic = 'poll.order' and event_time > ${new Date(outageStart).toISOString()}::timestamptz`;

    // The busiest real minute: call times divided by SPEED, counted in every 60 s window.
    const real = callTimes.map((t) => (t - callTimes[0]) * SPEED);
    let maxPerMinute = 0;
    for (let i = 0, j = 0; j < real.length; j++) {
      while (real[j] - real[i] >= MINUTE) i++;
      maxPerMinute = Math.max(maxPerMinute, j - i + 1);
    }
    const wharfPerPage = wharfMs.reduce((a, b) => a + b, 0) / wharfMs.length;
    const providerPerCall = (client.stats.providerMs - provider0) / calls;
    const waitedPerCall = (budget.stats.waitedMs - waited0) / calls;

    const rows: [string, string][] = [
      ['changed shipments (= orders)', String(changed)],
      ['found by the catch-up poll', `${found}${found === changed ? ' (all)' : ' (MISSING SOME)'}`],
      ['API calls (orders stream)', `${calls} in ${result.pages} pages`],
      ['minimum ceil(N / 250)', String(minCalls)],
      ['calls / minimum', (calls / minCalls).toFixed(3)],
      ['wharf ms per page (events + commit)', wharfPerPage.toFixed(1)],
      ['simulator ms per call (loopback HTTP + body)', providerPerCall.toFixed(1)],
      // The real provider cannot be called faster than its limit allows: that pace is what wharf's time competes with.
      [
        'provider pace at its limit (150/min)',
        `${(MINUTE / REAL_LIMIT).toFixed(0)} ms per call → wharf uses ${((100 * wharfPerPage) / (MINUTE / REAL_LIMIT)).toFixed(1)}% of it`,
      ],
      ['budget wait ms per call', `${waitedPerCall.toFixed(1)} (at ${SPEED}× speed)`],
      ['wall time', `${(wallMs / 1000).toFixed(1)} s at ${SPEED}× speed ≈ ${((wallMs * SPEED) / MINUTE).toFixed(1)} min real`],
      [
        'busiest minute at the real limit',
        `${maxPerMinute} calls (budget bound ${maxCallsInWindow(budgetShape(REAL_BUDGET))}, provider ${REAL_LIMIT})`,
      ],
      ['429s received', String(client.stats.throttled)],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`\npoll catch-up after a 24 h webhook outage\n`);
    for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'poll',
        changed,
        calls,
        min_calls: minCalls,
        call_ratio: Number((calls / minCalls).toFixed(4)),
        max_calls_per_min_at_real_limit: maxPerMinute,
        wharf_ms_per_page: Number(wharfPerPage.toFixed(2)),
      })}\n`,
    );
  } finally {
    await db.close();
    await sim.close();
    await stopDb();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
