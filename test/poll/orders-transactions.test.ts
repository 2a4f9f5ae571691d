import t from 'tap';
import { DAY, MINUTE } from '../../src/config.js';
import { budgetShape, maxCallsInWindow } from '../../src/provider/rate-budget.js';
import { pollSetup } from './poll-setup.js';

// The orders and billing streams against the simulator over HTTP, into a real inbox. (The drain's view of the same
// events, and the database equal to the world, is poll-e2e.test.ts.)

const orderIds = (world: { truth(): { orders: { id: number; client_id: number; last_update_at: string }[] } }, clientId = 1) =>
  world
    .truth()
    .orders.filter((o) => o.client_id === clientId)
    .map((o) => `poll:order:${o.id}:${o.last_update_at}`);

t.test('the first poll stores every order and transaction the provider holds, and closes its window', async (t) => {
  const { world, poll, inboxIds, sql } = await pollSetup(t, { worldOptions: { seed: 7, clients: 2, ordersPerClient: 150 } });
  world.advance(MINUTE);
  const orders = await poll(1, 'orders', { settings: { orderPageLimit: 50 } });
  const expected = orderIds(world);
  t.same([...(await inboxIds('c1', 'poll.order'))].sort(), expected.sort(), 'exactly the current version of each order');
  t.equal(orders.inserted, expected.length);
  // Sub-windows sized from total-count (orders-contract.test.ts has the cost in every sort order).
  t.ok(orders.calls >= 3 && orders.calls <= 12, `${orders.calls} requests for 150 orders at 50 a page`);
  t.same(await inboxIds('c2', 'poll.order'), new Set(), 'another token, another source');

  const txns = await poll(1, 'transactions');
  const truth = world.truth().transactions.filter((x) => x.source_client_id === 1);
  t.same(
    [...(await inboxIds('c1', 'poll.transaction'))].sort(),
    truth.map((x) => `poll:transaction:${x.transaction_id}:${x.last_update_at}`).sort(),
  );
  t.equal(txns.calls, Math.ceil(truth.length / 1000));

  const [row] = await sql`
    select via, event_time = (body::jsonb ->> 'last_update_at')::timestamptz as versioned
      from inbox_events where topic = 'poll.order' limit 1`;
  t.same(row, { via: 'poll', versioned: true }, "event_time is the order's last update");
  const cursors = await sql`
    select stream, cursor_time::text, window_end, cursor_token, last_success_at is not null as ok
      from poll_cursors order by stream`;
  t.same(
    cursors.map((c) => [c.stream, c.window_end, c.cursor_token, c.ok]),
    [
      ['orders', null, null, true],
      ['transactions', null, null, true],
    ],
  );
});

t.test('an incremental poll with nothing new costs exactly one request per stream', async (t) => {
  const { world, poll } = await pollSetup(t, { worldOptions: { seed: 8, clients: 1, ordersPerClient: 120 } });
  world.advance(MINUTE);
  await poll(1, 'orders');
  await poll(1, 'transactions');
  world.advance(MINUTE);
  const orders = await poll(1, 'orders');
  const txns = await poll(1, 'transactions');
  t.same([orders.calls, orders.inserted], [1, 0]);
  t.same([txns.calls, txns.inserted], [1, 0]);

  world.step({ newOrders: 4, updates: 6, billing: 3, durationMs: 10_000 });
  world.advance(MINUTE);
  const after = await poll(1, 'orders');
  t.equal(after.calls, 1, 'a few changes still fit one page');
  t.ok(after.inserted >= 4, `the changes were found (${after.inserted} new order versions)`);
});

// (A poll killed mid-window resumes without loss or refetch: orders-contract.test.ts.)

t.test('orders updated while the poller pages through them are still caught', async (t) => {
  const { world, poll, inboxIds } = await pollSetup(t, {
    worldOptions: { seed: 10, clients: 1, ordersPerClient: 1500 },
    orderListing: { sort: 'last_update', bounds: 'inclusive' },
  });
  world.advance(MINUTE);
  // The last two days: where the shipments still moving are, so updates land on pages already read.
  const settings = { orderPageLimit: 50, overlapMs: 0, backfillMs: 2 * DAY };
  const horizon = world.now() - 2 * DAY;
  const before = world
    .truth()
    .orders.filter((o) => Date.parse(o.last_update_at) >= horizon)
    .sort((a, b) => a.last_update_at.localeCompare(b.last_update_at) || a.id - b.id);
  const firstPage = new Set(before.slice(0, 50).map((o) => o.id));
  let moved: number[] = [];
  t.ok(before.length > 120, `the window spans several pages (${before.length} orders)`);
  await poll(1, 'orders', {
    settings,
    onPage: (p) => {
      if (p.page !== 1) return;
      world.step({ newOrders: 0, updates: 60, billing: 0, durationMs: 1000 });
      const now = new Map(world.truth().orders.map((o) => [o.id, o.last_update_at]));
      moved = before.filter((o) => now.get(o.id) !== o.last_update_at).map((o) => o.id);
    },
  });
  t.ok(
    moved.some((id) => firstPage.has(id)),
    'orders already read moved to the end, shifting later pages forward (what breaks plain page numbers)',
  );
  const seen = await inboxIds('c1', 'poll.order');
  const unmoved = before.filter((o) => !moved.includes(o.id));
  t.same(
    unmoved.filter((o) => !seen.has(`poll:order:${o.id}:${o.last_update_at}`)).map((o) => o.id),
    [],
    'no order that stayed in the window was skipped',
  );

  world.advance(MINUTE);
  await poll(1, 'orders', { settings });
  const all = await inboxIds('c1', 'poll.order');
  const now = new Map(world.truth().orders.map((o) => [o.id, o.last_update_at]));
  t.same(
    moved.map((id) => `poll:order:${id}:${now.get(id)}`).filter((id) => !all.has(id)),
    [],
    'the next poll caught the moved orders at their new version',
  );
});

t.test('a storm of 429s: the poller waits as told, finishes, and never exceeds the budget', async (t) => {
  const callsPerMinute = 600;
  const { world, sim, poll, inboxIds } = await pollSetup(
    t,
    { worldOptions: { seed: 11, clients: 1, ordersPerClient: 200 }, faults: { rate429: 0.2 }, seed: 4 },
    { PROVIDER_CALLS_PER_MINUTE: String(callsPerMinute) },
  );
  world.advance(MINUTE);
  const started = Date.now();
  const orders = await poll(1, 'orders', { settings: { orderPageLimit: 50 } });
  const txns = await poll(1, 'transactions');
  const elapsed = Date.now() - started;
  const refused = sim.stats.byStatus['429'] ?? 0;
  const served = sim.stats.byStatus['200'] ?? 0;
  t.ok(refused >= 2, `${refused} answers were 429`);
  t.equal(orders.client.stats.throttled + txns.client.stats.throttled, refused);
  t.ok(elapsed >= refused * 1000 - 50, `waited x-retry-after (1 s) after each 429: ${elapsed} ms for ${refused}`);
  t.ok(served + refused <= maxCallsInWindow(budgetShape(callsPerMinute), elapsed), 'within the budget');
  t.same([...(await inboxIds('c1', 'poll.order'))].sort(), orderIds(world).sort(), 'and found every order');
});
