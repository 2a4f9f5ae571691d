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
 * - The catch-up runs once per sort order the provider's contract allows (`newest`, `oldest` by creation, and a stable
 *   `arbitrary` order; exclusive bounds), each as its own source sharing the one token, so each starts from the same
 *   cursor.
 * Figures: calls against the minimum ceil(N / 250) per order, orders missed at their latest state, wharf's own time
 * per page (building events + the page's commit) against the provider's (HTTP round trip and body) and the budget's
 * waits.
 * Last line: {"bench":"poll","call_ratio" (the worst order's),"call_ratio_by_order":{newest,oldest,arbitrary},"missed",
 * "changed","calls_by_order","min_calls","max_calls_per_min_at_real_limit","wharf_ms_per_page"}.
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
import { orderEvent } from '../src/poll/orders.js';
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
    const ORDERS = ['newest', 'oldest', 'arbitrary'] as const;
    const sources: Record<string, string> = {};
    for (const order of ORDERS) {
      sources[order] = await insertSource(db.sql, keyRingOf(config), {
        name: `bench-poll-${order}-${Date.now()}`,
        secret: world.clients[0].secret,
        apiToken: token,
      });
    }
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
    const ctxFor = (sourceId: string) => ({
      sql: db.sql,
      client,
      sourceId,
      now,
      settings,
      onPage: (p: { wharfMs: number }) => void wharfMs.push(p.wharfMs),
    });

    // Before the outage: caught up.
    world.advance(MINUTE);
    for (const order of ORDERS) {
      sim.orderListing.sort = order;
      await runPollStream(ctxFor(sources[order]), 'orders');
    }
    const outageStart = world.now();

    // 24 hours of changes nobody announced: about 50,000 shipments created or moved on (counted, not assumed).
    const changedOrders = () => world.ordersByLastUpdate(1).filter((o) => Date.parse(o.last_update_at ?? '') > outageStart);
    for (let hour = 0; hour < 24; hour++) {
      world.step({ newOrders: 2080, updates: 1100, billing: 0, durationMs: HOUR });
    }
    const changed = changedOrders().length;
    const minCalls = Math.ceil(changed / 250);
    world.advance(MINUTE);
    process.stdout.write(`outage: ${changed} shipments changed in 24 h of world time; catching up once per sort order…\n`);

    interface Run {
      order: string;
      calls: number;
      pages: number;
      missed: number;
      wallMs: number;
      maxPerMinute: number;
      wharfPerPage: number;
      providerPerCall: number;
      waitedPerCall: number;
      throttled: number;
    }
    const runs: Run[] = [];
    for (const order of ORDERS) {
      sim.orderListing.sort = order;
      const sourceId = sources[order];
      const calls0 = client.stats.calls;
      const provider0 = client.stats.providerMs;
      const waited0 = budget.stats.waitedMs;
      const throttled0 = client.stats.throttled;
      wharfMs.length = 0;
      callTimes.length = 0;
      const started = performance.now();
      const result = await runPollStream(ctxFor(sourceId), 'orders');
      const wallMs = performance.now() - started;
      const calls = client.stats.calls - calls0;
      const want = changedOrders().map((o) => orderEvent(sourceId, o).eventId);
      const [{ found }] = await db.sql<{ found: number }[]>`
        select count(*)::int as found from inbox_events
         where source_id = ${sourceId} and event_id = any(${want}::text[])`;
      // The busiest real minute: call times divided by SPEED, counted in every 60 s window.
      const real = callTimes.map((t) => (t - callTimes[0]) * SPEED);
      let maxPerMinute = 0;
      for (let i = 0, j = 0; j < real.length; j++) {
        while (real[j] - real[i] >= MINUTE) i++;
        maxPerMinute = Math.max(maxPerMinute, j - i + 1);
      }
      runs.push({
        order,
        calls,
        pages: result.pages,
        missed: want.length - found,
        wallMs,
        maxPerMinute,
        wharfPerPage: wharfMs.reduce((a, b) => a + b, 0) / wharfMs.length,
        providerPerCall: (client.stats.providerMs - provider0) / calls,
        waitedPerCall: (budget.stats.waitedMs - waited0) / calls,
        throttled: client.stats.throttled - throttled0,
      });
    }

    const rows: [string, ...string[]][] = [
      ['sort order', ...runs.map((r) => r.order)],
      ['changed shipments (= orders)', ...runs.map(() => String(changed))],
      ['missed at their latest state', ...runs.map((r) => String(r.missed))],
      ['API calls (orders stream)', ...runs.map((r) => String(r.calls))],
      ['minimum ceil(N / 250)', ...runs.map(() => String(minCalls))],
      ['calls / minimum', ...runs.map((r) => (r.calls / minCalls).toFixed(3))],
      ['wharf ms per page (events + commit)', ...runs.map((r) => r.wharfPerPage.toFixed(1))],
      ['simulator ms per call (loopback)', ...runs.map((r) => r.providerPerCall.toFixed(1))],
      // The real provider cannot be called faster than its limit allows: that pace is what wharf's time competes with.
      ['share of the 400 ms per call at 150/min', ...runs.map((r) => `${((100 * r.wharfPerPage) / (MINUTE / REAL_LIMIT)).toFixed(1)}%`)],
      ['budget wait ms per call', ...runs.map((r) => `${r.waitedPerCall.toFixed(1)} (${SPEED}x)`)],
      ['wall time ≈ real', ...runs.map((r) => `${((r.wallMs * SPEED) / MINUTE).toFixed(1)} min`)],
      ['busiest minute at the real limit', ...runs.map((r) => `${r.maxPerMinute} calls`)],
      ['429s received', ...runs.map((r) => String(r.throttled))],
    ];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    process.stdout.write(
      `\npoll catch-up after a 24 h webhook outage (budget bound ${maxCallsInWindow(budgetShape(REAL_BUDGET))}/min, provider ${REAL_LIMIT})\n`,
    );
    for (const r of rows) process.stdout.write(`  ${r.map((c, i) => c.padEnd(widths[i])).join('  ')}\n`);
    const ratioBy = Object.fromEntries(runs.map((r) => [r.order, Number((r.calls / minCalls).toFixed(4))]));
    process.stdout.write(
      `${JSON.stringify({
        bench: 'poll',
        call_ratio: Math.max(...Object.values(ratioBy)),
        call_ratio_by_order: ratioBy,
        missed: runs.reduce((n, r) => n + r.missed, 0),
        changed,
        calls_by_order: Object.fromEntries(runs.map((r) => [r.order, r.calls])),
        min_calls: minCalls,
        max_calls_per_min_at_real_limit: Math.max(...runs.map((r) => r.maxPerMinute)),
        wharf_ms_per_page: Number((runs.reduce((n, r) => n + r.wharfPerPage, 0) / runs.length).toFixed(2)),
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
