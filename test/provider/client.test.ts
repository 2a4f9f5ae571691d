import t from 'tap';
import { freePort } from '../../src/net.js';
import { createProviderClient, type ProviderClientOptions } from '../../src/provider/client.js';
import {
  ProviderAuthError,
  ProviderNotFoundError,
  ProviderRequestError,
  ProviderUnavailableError,
} from '../../src/provider/errors.js';
import { createRateBudget } from '../../src/provider/rate-budget.js';
import { API_VERSION } from '../../src/provider/shapes.js';
import { startSimulator } from '../harness/simulator/index.js';
import { freshDatabase } from '../helper.js';

// The provider client against the simulator over real HTTP, spending from a real budget in PostgreSQL.

const { sql } = await freshDatabase(t);
const sim = await startSimulator({ worldOptions: { seed: 5, clients: 2, ordersPerClient: 120 }, rateLimit: false });
t.teardown(() => sim.close());
const [alice] = sim.world.clients;
const truth = sim.world.truth();

/** Every request the client sends, with its answer: observed, not altered. */
const seen: { at: number; status: number; auth: string | null }[] = [];
const observe: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  seen.push({ at: Date.now(), status: res.status, auth: new Headers(init?.headers).get('authorization') });
  return res;
};

function client(overrides: Partial<ProviderClientOptions> = {}) {
  const token = overrides.token ?? alice.token;
  return createProviderClient({
    baseUrl: sim.url,
    version: API_VERSION,
    token,
    budget: createRateBudget(sql, { token, callsPerMinute: 60_000 }),
    fetch: observe,
    retryBaseMs: 5,
    ...overrides,
  });
}

t.beforeEach(() => {
  seen.length = 0;
  sim.faults.rate429 = 0;
  sim.faults.rate500 = 0;
});

t.test('lists orders with bearer auth, bounds and the page next-page points to', async (t) => {
  const mine = truth.orders.filter((o) => o.client_id === alice.id).sort((a, b) => a.id - b.id);
  const page1 = await client().listOrders({ limit: 50 });
  t.equal(page1.orders.length, 50);
  t.equal(page1.nextPage, 2, 'next-page (a path with the version) resolved to its Page');
  t.equal(page1.totalCount, mine.length);
  t.equal(seen[0].auth, `Bearer ${alice.token}`);
  const last = await client().listOrders({ limit: 50, page: 3 });
  t.equal(last.nextPage, null, 'no next-page on the last page');
  const one = mine[0];
  const before = new Date(Date.parse(one.last_update_at) - 1).toISOString();
  const after = new Date(Date.parse(one.last_update_at) + 1).toISOString();
  const exact = await client().listOrders({ from: before, to: after });
  t.ok(exact.orders.some((o) => o.id === one.id), 'bounds are sent as given');
});

t.test('queries transactions by body, then by cursor', async (t) => {
  const c = client();
  const first = await c.queryTransactions({
    query: { from_date: '2025-01-01T00:00:00Z', to_date: '2027-01-01T00:00:00Z', page_size: 10 },
  });
  t.equal(first.items.length, 10);
  t.ok(first.next);
  const second = await c.queryTransactions({ cursor: first.next as string });
  t.equal(second.items.length, 10);
  t.notSame(second.items[0].transaction_id, first.items[0].transaction_id, 'the cursor moved on');
  const asUrl = await c.queryTransactions({ cursor: `${sim.apiUrl}/transactions:query?Cursor=${first.next}` });
  t.same(asUrl.items.map((x) => x.transaction_id), second.items.map((x) => x.transaction_id), 'a next that is a URL: its Cursor');
});

t.test('fetches a timeline; an unknown shipment is a typed not-found', async (t) => {
  const s = truth.shipments.find((x) => x.client_id === alice.id) as (typeof truth.shipments)[number];
  const timeline = await client().getTimeline(s.id);
  t.ok(timeline.length >= 1);
  t.equal(timeline[0].log_type_id, 601);
  await t.rejects(client().getTimeline(1), ProviderNotFoundError);
  t.equal(seen.length, 2, 'a 404 is not retried');
});

t.test("fetches a return by id; another account's return is a typed not-found", async (t) => {
  const r = truth.returns.find((x) => x.client_id === alice.id);
  const other = truth.returns.find((x) => x.client_id !== alice.id);
  if (!r || !other) throw new Error('the seeded world has returns for both clients');
  const { client_id, ...resource } = r;
  t.same(await client().getReturn(r.id), resource);
  await t.rejects(client().getReturn(other.id), ProviderNotFoundError);
});

t.test('waits as x-retry-after says after a 429 and then succeeds', async (t) => {
  sim.faults.rate429 = 0.5;
  const c = client();
  for (let i = 0; i < 4; i++) await c.listOrders({ limit: 1 });
  const throttled = seen.filter((s) => s.status === 429);
  t.ok(throttled.length >= 1, `${throttled.length} 429s happened`);
  t.equal(c.stats.throttled, throttled.length);
  for (const s of throttled) {
    const next = seen.find((x) => x.at >= s.at && x !== s) as (typeof seen)[number];
    t.ok(next.at - s.at >= 950, `the next request came ${next.at - s.at} ms after a 429 that said 1 s`);
  }
  const [row] = await sql`select throttled::int from rate_budgets where throttled > 0`;
  t.equal(row.throttled, throttled.length, 'every 429 blocked the shared budget');
});

t.test('retries 5xx with backoff, then fails with a retryable error', async (t) => {
  sim.faults.rate500 = 1;
  const err = await client({ maxAttempts: 3 })
    .listOrders({})
    .catch((e: unknown) => e);
  t.type(err, ProviderUnavailableError);
  t.equal((err as ProviderUnavailableError).retryable, true);
  t.equal(seen.length, 3, 'bounded attempts');
  sim.faults.rate500 = 0.5;
  const ok = await client({ maxAttempts: 10 }).listOrders({ limit: 5 });
  t.equal(ok.orders.length, 5, 'a transient 5xx is retried away');
});

t.test('a network error is retried and then reported without the token', async (t) => {
  const port = await freePort();
  const err = await client({ baseUrl: `http://127.0.0.1:${port}`, maxAttempts: 2 })
    .getTimeline(1)
    .catch((e: unknown) => e);
  t.type(err, ProviderUnavailableError);
  t.match((err as Error).message, /network error after 2 attempts/);
  t.notMatch((err as Error).message, alice.token);
});

t.test('a refused token is a typed, non-retryable error that never shows the token', async (t) => {
  const err = await client({ token: 'pat_wrong_and_secret' })
    .listOrders({})
    .catch((e: unknown) => e);
  t.type(err, ProviderAuthError);
  t.equal((err as ProviderAuthError).retryable, false);
  t.notMatch((err as Error).message, 'pat_wrong_and_secret');
  t.equal(seen.length, 1);
});

t.test('a bad request carries the provider message', async (t) => {
  const err = await client()
    .queryTransactions({ cursor: 'not-a-cursor' })
    .catch((e: unknown) => e);
  t.type(err, ProviderRequestError);
  t.match((err as Error).message, /Invalid Cursor/);
});

t.test('inventory pages follow next under the API root only: the token never goes to another host', async (t) => {
  const first = await client().listInventory({ pageSize: 5 });
  t.equal(first.items.length, 5);
  t.ok(first.next, 'a next link');
  const second = await client().listInventory({ next: first.next! });
  t.not(second.items[0].inventory_id, first.items[0].inventory_id, 'the next page');
  const before = seen.length;
  for (const next of ['https://evil.example/2026-01/inventory?Cursor=5', '/other-version/../../x', `${sim.url}/../inventory`]) {
    await t.rejects(client().listInventory({ next }), /next link points outside the API/, next);
  }
  t.equal(seen.length, before, 'no request was sent for those');
});
