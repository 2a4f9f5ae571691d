import t from 'tap';
import { DAY, MINUTE } from '../../src/config.js';
import { nextPosition, orderEvent, TIE_PASSES } from '../../src/poll/orders.js';
import type { OrderListing } from '../harness/simulator/server.js';
import { pollSetup } from './poll-setup.js';

// The orders stream against a simulator that follows the provider's documented contract in each of its allowed
// readings: sorted newest or oldest first by creation, or in a stable arbitrary order; bounds exclusive or inclusive;
// update times tied on whole seconds; no paging headers; and orders changing between the requests of a poll.
// Under each: nothing is missed, and every order ends in the inbox at its latest state.

type World = Awaited<ReturnType<typeof pollSetup>>['world'];

/** The event id of every order of client 1 at its current state. */
const latestIds = (world: World) => world.ordersByLastUpdate(1).map((o) => orderEvent('c1', o).eventId);

async function missingLatest(world: World, inboxIds: (s: string, topic: string) => Promise<Set<string>>) {
  const seen = await inboxIds('c1', 'poll.order');
  return latestIds(world).filter((id) => !seen.has(id));
}

const MODES: [string, Partial<OrderListing>][] = [
  ['newest first, exclusive bounds', { sort: 'newest', bounds: 'exclusive' }],
  ['oldest first, exclusive bounds', { sort: 'oldest', bounds: 'exclusive' }],
  ['arbitrary stable order, exclusive bounds', { sort: 'arbitrary', bounds: 'exclusive' }],
  ['newest first, inclusive bounds', { sort: 'newest', bounds: 'inclusive' }],
  ['arbitrary order, no paging headers', { sort: 'arbitrary', bounds: 'exclusive', pagingHeaders: false }],
  ['newest first, update times tied on whole seconds', { sort: 'newest', bounds: 'exclusive', updateGranularityMs: 1000 }],
];

for (const [name, listing] of MODES) {
  t.test(`${name}: orders changing between page reads are all caught at their latest state`, async (t) => {
    const { world, sim, poll, inboxIds } = await pollSetup(t, {
      worldOptions: { seed: 21, clients: 1, ordersPerClient: 400 },
      orderListing: listing,
    });
    world.advance(MINUTE);
    const settings = { orderPageLimit: 25, overlapMs: 2000 };
    // Between requests the provider changes orders (shipments move on, new orders arrive): some leave the window
    // being read, shifting the offsets of the rest.
    let requests = 0;
    sim.onRequest = (route) => {
      if (route !== 'GET /order' || ++requests % 2 !== 0) return;
      world.step({ newOrders: 2, updates: 15, billing: 0, durationMs: 500 });
    };
    const first = await poll(1, 'orders', { settings });
    t.ok(first.pages > 16, `the backfill took many requests (${first.pages})`);
    sim.onRequest = undefined;
    // Ties: a burst of changes inside a few seconds, more per second than one page holds.
    world.step({ newOrders: 40, updates: 120, billing: 0, durationMs: 3000 });
    world.advance(MINUTE);
    await poll(1, 'orders', { settings });
    t.same(await missingLatest(world, inboxIds), [], 'every order is in the inbox at its latest state');
    world.advance(MINUTE);
    const idle = await poll(1, 'orders', { settings });
    t.equal(idle.calls, 1, 'an idle poll costs one request');
  });
}

t.test('the request count stays near ceil(N / Limit) in every sort order', async (t) => {
  for (const sort of ['newest', 'oldest', 'arbitrary'] as const) {
    const { world, poll } = await pollSetup(t, {
      worldOptions: { seed: 22, clients: 1, ordersPerClient: 50, maxShipmentsPerOrder: 1 },
      orderListing: { sort },
    });
    world.advance(MINUTE);
    await poll(1, 'orders');
    for (let h = 0; h < 6; h++) world.step({ newOrders: 400, updates: 200, billing: 0, durationMs: 3_600_000 });
    world.advance(MINUTE);
    const since = world.now() - 6 * 3_600_000 - 2 * MINUTE;
    const changed = world.ordersByLastUpdate(1).filter((o) => Date.parse(o.last_update_at ?? '') > since).length;
    const r = await poll(1, 'orders', { settings: { orderPageLimit: 50 } });
    const ratio = r.calls / Math.ceil(changed / 50);
    t.ok(ratio <= 1.5, `${sort}: ${r.calls} requests for ${changed} changed orders, ${ratio.toFixed(2)}x the minimum`);
  }
});

t.test('a tied millisecond is re-read from page 1 when its total-count moves, a bounded number of times', async (t) => {
  const o = { limit: 10, target: 8, page: 1 };
  const orders = Array.from({ length: 10 }, () => ({}) as never);
  const start = nextPosition({ from: 100, width: 1 }, 1, 101, { orders, totalCount: 25 }, o);
  t.same(start, { from: 100, width: 1, tie: { page: 2, count: 25, pass: 1 } }, 'page 1 of a tie: go on with page 2');
  const moved = nextPosition(start, 1, 101, { orders, totalCount: 24 }, { ...o, page: 2 });
  t.same(moved, { from: 100, width: 1, tie: { page: 1, count: null, pass: 2 } }, 'an order left meanwhile: again');
  const exhausted = nextPosition({ from: 100, width: 1, tie: { page: 2, count: 25, pass: TIE_PASSES } }, 1, 101, { orders: orders.slice(0, 3), totalCount: 23 }, { ...o, page: 3 });
  t.equal(exhausted.from, 101, 'after the last pass the last read stands');
  const narrowed = nextPosition({ from: 0, width: 1000 }, 1000, 1000, { orders, totalCount: 40 }, o);
  t.same(narrowed, { from: 0, width: 200, ahead: { end: 1000, count: 40 } }, 'an overflow narrows to what holds the target');
  const rest = nextPosition(narrowed, 200, 200, { orders: [], totalCount: 0 }, o);
  t.same(rest, { from: 200, width: 160, ahead: { end: 1000, count: 40 } }, 'an empty answer sizes the next by what lies ahead (40 in 800 ms: 8 per 160)');
  const grown = nextPosition({ from: 0, width: 1000 }, 1000, 1000, { orders: [], totalCount: 0 }, o);
  t.same(grown, { from: 1000, width: 4000 }, 'an empty sub-window lets the next grow, at most 4x');
});

t.test('a backfill killed mid-window resumes at its committed sub-window: no request is repeated', async (t) => {
  const { world, sql, sim, poll, inboxIds } = await pollSetup(t, {
    worldOptions: { seed: 23, clients: 1, ordersPerClient: 300 },
    orderListing: { sort: 'oldest' },
  });
  world.advance(MINUTE);
  // A second source with the same token reads the same provider uninterrupted: the reference cost.
  await sql`insert into sources (id, name, api_token) select 'copy', 'copy', api_token from sources where id = 'c1'`;
  await sql`insert into source_secrets (source_id, secret) values ('copy', 'whsec_AAAA')`;
  const settings = { orderPageLimit: 25, backfillMs: 40 * DAY };
  const kill = new AbortController();
  await t.rejects(
    poll(1, 'orders', { settings, signal: kill.signal, onPage: (p) => (p.page === 3 ? kill.abort() : undefined) }),
  );
  const [open] = await sql`select window_end, cursor_token from poll_cursors where source_id = 'c1' and stream = 'orders'`;
  t.ok(open.window_end && open.cursor_token, 'the window and its position survived the kill');
  const before = sim.stats.byEndpoint['GET /order'];
  t.equal(before, 3);
  // The clock has not moved: the resumed run's window is the killed run's, and so is the copy's.
  const resumed = await poll(1, 'orders', { settings });
  const reference = await pollAs(poll, 'copy', settings);
  t.equal(3 + resumed.calls, reference, 'killed + resumed = one uninterrupted run, request for request');
  t.same(await missingLatest(world, inboxIds), []);
});

/** Polls as another source id with client 1's token (poll-setup's helper is per simulator client). */
async function pollAs(poll: Awaited<ReturnType<typeof pollSetup>>['poll'], sourceId: string, settings: object) {
  const r = await poll(1, 'orders', { settings, sourceId } as never);
  return r.calls;
}
