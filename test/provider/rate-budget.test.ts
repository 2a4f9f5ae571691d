import t from 'tap';
import { API_VERSION } from '../../src/provider/shapes.js';
import { createDb } from '../../src/db/client.js';
import { createProviderClient } from '../../src/provider/client.js';
import {
  blockRateBudget,
  budgetShape,
  createRateBudget,
  maxCallsInWindow,
  rateBudgetKey,
  takeRateToken,
} from '../../src/provider/rate-budget.js';
import { startSimulator } from '../harness/simulator/index.js';
import { freshDatabase } from '../helper.js';

// The shared rate budget, on a real PostgreSQL; the last test spends it against the simulator over HTTP.

t.test('the default budget can never exceed the provider limit of 150 calls in a minute', async (t) => {
  t.equal(maxCallsInWindow(budgetShape(120)), 132);
  t.ok(maxCallsInWindow(budgetShape(120)) <= 150);
  t.equal(budgetShape(1).capacity, 1, 'a tiny budget still allows one call');
});

t.test('a bucket grants its capacity at once, then refuses with the wait until the next token', async (t) => {
  const { sql } = await freshDatabase(t);
  const shape = budgetShape(60); // 1 per second, capacity 6
  const key = rateBudgetKey('pat_test');
  const results = [];
  for (let i = 0; i < 10; i++) results.push(await takeRateToken(sql, { key, ...shape }));
  t.equal(results.filter((r) => r.granted).length, 6);
  const refused = results[9];
  t.notOk(refused.granted);
  t.ok(refused.waitMs > 0 && refused.waitMs <= 1000, `told to wait, never more than one token's refill (${refused.waitMs} ms)`);
  const [row] = await sql`select key, calls::int from rate_budgets`;
  t.equal(row.calls, 6, 'refusals are not counted as calls');
  t.equal(row.key, key);
  t.notMatch(row.key, /pat_test/, 'the key is a hash, not the token');
});

t.test('a 429 blocks the budget for everyone, and it restarts empty', async (t) => {
  const { sql } = await freshDatabase(t);
  const shape = budgetShape(6000); // 100 per second
  const key = rateBudgetKey('pat_block');
  t.ok((await takeRateToken(sql, { key, ...shape })).granted);
  await blockRateBudget(sql, { key, retryAfterMs: 300 });
  const refused = await takeRateToken(sql, { key, ...shape });
  t.notOk(refused.granted);
  // The rest of the block plus one token's refill (10 ms at this rate).
  t.ok(refused.waitMs > 0 && refused.waitMs <= 310, `told to wait, never past the block plus one token (${refused.waitMs} ms)`);
  await new Promise((r) => setTimeout(r, refused.waitMs + 5));
  t.ok((await takeRateToken(sql, { key, ...shape })).granted, 'granted once the block ended and a token refilled');
  const [row] = await sql`select throttled::int, tokens::float8 from rate_budgets`;
  t.equal(row.throttled, 1);
  t.ok(row.tokens < 50, `no burst right after a block (${row.tokens} of ${shape.capacity} tokens)`);
});

t.test('two processes (two pools) sharing one token never spend more than the budget', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const other = createDb({ url, max: 5 });
  t.teardown(() => other.close(1));
  const sim = await startSimulator({ worldOptions: { clients: 1, ordersPerClient: 5 } }); // the real 150/min limit
  t.teardown(() => sim.close());
  const token = sim.world.clients[0].token;
  const callsPerMinute = 600; // 10 per second, capacity 60
  const shape = budgetShape(callsPerMinute);
  const times: number[] = [];
  const clients = [sql, other.sql].map((pool) =>
    createProviderClient({
      baseUrl: sim.url,
      version: API_VERSION,
      token,
      budget: createRateBudget(pool, { token, callsPerMinute }),
    }),
  );
  const started = Date.now();
  const until = started + 2000;
  // Four callers per process, each calling as fast as the budget lets it.
  await Promise.all(
    clients.flatMap((client) =>
      Array.from({ length: 4 }, async () => {
        while (Date.now() < until) {
          await client.listOrders({ limit: 1 });
          times.push(Date.now());
        }
      }),
    ),
  );
  const elapsed = Date.now() - started;
  const allowed = maxCallsInWindow(shape, elapsed);
  t.ok(times.length <= allowed, `${times.length} calls in ${elapsed} ms, budget allows ${allowed}`);
  t.ok(times.length >= shape.capacity, 'the callers did spend the budget (it was the limit, not their speed)');
  t.equal(sim.stats.byStatus['429'] ?? 0, 0, 'the provider never had to refuse');
  const [row] = await sql`select calls::int from rate_budgets`;
  t.equal(row.calls, sim.stats.byEndpoint['GET /order'], 'every call took a token from the one shared row');
});
