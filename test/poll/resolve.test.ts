import t, { type Test } from 'tap';
import { normaliseEvent } from '../../src/apply/normalise.js';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { createProviderClient } from '../../src/provider/client.js';
import { createRateBudget } from '../../src/provider/rate-budget.js';
import { resolveDue } from '../../src/poll/resolve.js';
import { API_VERSION } from '../../src/provider/shapes.js';
import { fromChange, insertInbox } from '../apply/factory.js';
import { startSimulator } from '../harness/simulator/index.js';
import { reshape } from '../harness/simulator/shapes.js';
import { freshDatabase } from '../helper.js';

// Bodies in every shape the provider documents, per topic: applied as the entity they are (never as the entity the
// topic suggests), and when they name a resource without standing for it (the order-centric tracking_received shape,
// a body without a status), fetched by id through the API and applied through the same inbox.

const row = (topic: string, body: unknown, via = 'webhook') => ({
  id: 1,
  sourceId: 's',
  topic,
  body: JSON.stringify(body),
  eventTime: null,
  receivedAt: '2026-02-01 10:00:00+00',
  via,
});

t.test('shape detection per topic: an order.shipped Shipment is a shipment, an order-centric body is a fetch', async (t) => {
  const shipment = { id: 200_000_009, order_id: 100_000_003, status: 'LabeledCreated', event_time: '2026-02-01T00:00:00Z' };
  const asShipment = normaliseEvent(row('order.shipped', shipment));
  t.match(asShipment, { outcome: 'apply' });
  if (asShipment.outcome === 'apply') {
    t.same(asShipment.entities.orders, [], 'no order row keyed by the shipment id');
    t.match(asShipment.entities.shipments, [{ id: 200_000_009, orderId: 100_000_003, status: 'LabeledCreated' }]);
  }
  const official = {
    event_time: '2025-10-23T15:55:09.3614767Z',
    order_id: 100000001,
    reference_id: 'TEST101',
    status: 'LabelCreated',
    tracking: { carrier: 'USPS', carrier_service: 'ParcelSelect', tracking_id: '9261290306529427911297', tracking_url: 'https://tools.usps.com/' },
  };
  for (const topic of ['order.shipment.tracking_received', 'order.shipment.delivered', 'order.shipped']) {
    const n = normaliseEvent(row(topic, official));
    t.match(n, { outcome: 'apply' }, `${topic}: not dead`);
    if (n.outcome === 'apply') {
      t.same(n.entities.shipments, [], `${topic}: nothing applied from the partial body`);
      t.match(n.entities.resolves, [{ kind: 'order', id: 100000001, reason: 'order-centric payload without a shipment id' }]);
    }
  }
  const noStatus = normaliseEvent(row('order.shipment.exception', { id: 5, order_id: 6 }));
  t.match(noStatus, { outcome: 'apply', entities: { shipments: [], resolves: [{ kind: 'shipment', id: 5 }] } });
  t.match(normaliseEvent(row('order.shipment.delivered', { status: 'Completed' })), {
    outcome: 'dead',
    reason: 'shipment id missing or invalid',
  }, 'nothing to fetch by: dead, naming what is missing');
  const order = normaliseEvent(row('order.shipment.delivered', { id: 7, status: 'Fulfilled', shipments: [{ id: 8, status: 'Completed' }] }));
  t.match(order, { outcome: 'apply', entities: { orders: [{ id: 7 }], shipments: [{ id: 8, orderId: 7 }] } }, 'an Order body is an order');
});

async function setup(t: Test, withTokens: boolean) {
  const sim = await startSimulator({ worldOptions: { seed: 31, clients: 2, ordersPerClient: 20 }, rateLimit: false });
  t.teardown(() => sim.close());
  const { sql } = await freshDatabase(t);
  for (const c of sim.world.clients) {
    await sql`insert into sources (id, name, client_id, api_token)
              values (${`src-${c.id}`}, ${c.name}, ${`client-${c.id}`}, ${withTokens ? c.token : null})`;
  }
  const clientFor = (clientId: number) => {
    const token = sim.world.clients[clientId - 1].token;
    return createProviderClient({
      baseUrl: sim.url,
      version: API_VERSION,
      token,
      budget: createRateBudget(sql, { token, callsPerMinute: 60_000 }),
    });
  };
  const future = () => new Date(Date.now() + 60_000);
  return { sim, sql, clientFor, future };
}

t.test('order-centric deliveries are fetched by id (one call per order however many asked) and land as the world holds them', async (t) => {
  const { sim, sql, clientFor, future } = await setup(t, true);
  const changes = [1, 2, 3].flatMap(() => sim.world.step({ newOrders: 4, updates: 40, billing: 0, durationMs: 30_000 }));
  const shaped = reshape(reshape(changes, 'per_shipment'), 'order_centric');
  await insertInbox(sql, shaped.map(fromChange));
  const first = await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  t.equal(first.dead, 0, 'no dead letters');
  const [{ n, asked }] = await sql`select count(*)::int as n, sum(cardinality(inbox_ids))::int as asked from resolve_requests`;
  const orderCentric = shaped.filter((c) => c.topic.startsWith('order.shipment.')).length;
  t.equal(asked, orderCentric, 'every order-centric delivery asked for its order');
  t.ok(n < asked, `coalesced per order: ${n} requests for ${asked} deliveries`);
  const jobs = await sql`select key from graphile_worker._private_jobs where key like 'resolve:%' order by key`;
  t.same(jobs.map((j) => j.key), ['resolve:src-1', 'resolve:src-2'].filter((k) => shaped.some((c) => `resolve:src-${c.clientId}` === k)), 'one resolve job per source');

  const before = sim.stats.byEndpoint['GET /order/:id'] ?? 0;
  for (const c of sim.world.clients) await resolveDue({ sql, sourceId: `src-${c.id}`, client: clientFor(c.id), now: future });
  t.equal((sim.stats.byEndpoint['GET /order/:id'] ?? 0) - before, n, 'one GET /order/{id} per request');
  t.same(await sql`select * from resolve_requests`, [], 'all done');
  await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });

  const announced = new Set<number>();
  for (const c of changes) if (c.topic.startsWith('order.shipment.')) announced.add((c.payload as { id: number }).id);
  const truth = new Map(sim.world.truth().shipments.map((s) => [s.id, s]));
  const stored = await sql`select id::int, status, tracking_number, order_id::int from shipments where id = any(${[...announced]}::bigint[])`;
  t.equal(stored.length, announced.size, 'every shipment an order-centric delivery was about is stored');
  t.same(
    stored.filter((s) => s.status !== truth.get(s.id)?.status || s.tracking_number !== (truth.get(s.id)?.tracking?.tracking_number ?? null)).map((s) => s.id),
    [],
    'at the state the provider holds',
  );
  const wrong = await sql`select o.id from orders o join shipments s on s.id = o.id`;
  t.same(wrong, [], 'no order row keyed by a shipment id (per-shipment order.shipped bodies)');
  const [{ dead }] = await sql`select count(*) filter (where status = 'dead')::int as dead from inbox_events`;
  t.equal(dead, 0);
});

t.test('without an API token, or for an order the provider does not know, the deliveries are dead with the reason', async (t) => {
  const { sql, sim, clientFor, future } = await setup(t, false);
  const body = { event_time: '2026-01-15T00:00:01Z', order_id: 100_000_001, reference_id: 'x', status: 'LabeledCreated', tracking: null };
  await insertInbox(sql, [{ sourceId: 'src-1', topic: 'order.shipment.delivered', body }]);
  await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  await resolveDue({ sql, sourceId: 'src-1', client: null, now: future });
  const [a] = await sql`select status, last_error from inbox_events`;
  t.equal(a.status, 'dead');
  t.match(a.last_error, /order 100000001 .*the source has no API token/);

  await insertInbox(sql, [{ sourceId: 'src-2', topic: 'order.shipment.delivered', body: { ...body, order_id: 999 } }]);
  await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  await resolveDue({ sql, sourceId: 'src-2', client: clientFor(2), now: future });
  const [b] = await sql`select status, last_error from inbox_events where source_id = 'src-2'`;
  t.same({ ...b }, { status: 'dead', last_error: 'order-centric payload without a shipment id; order 999 not found at the provider' });
  t.ok(sim.stats.byEndpoint['GET /order/:id'] >= 1);
});

t.test('a shipment or return body without a status is fetched by id and applied in full', async (t) => {
  const { sim, sql, clientFor, future } = await setup(t, true);
  const truth = sim.world.truth();
  const shipment = truth.shipments.find((s) => s.client_id === 1)!;
  sim.world.step({ newOrders: 0, updates: 400, billing: 0, durationMs: 600_000 });
  const ret = sim.world.truth().returns.find((r) => r.client_id === 1);
  await insertInbox(sql, [
    { sourceId: 'src-1', topic: 'order.shipment.exception', body: { id: shipment.id, order_id: shipment.order_id, event_time: '2026-01-15T00:00:00Z' } },
    ...(ret ? [{ sourceId: 'src-1', topic: 'return.updated', body: { id: ret.id, event_time: '2026-01-15T00:00:00Z' } }] : []),
  ]);
  await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  const kinds = await sql`select kind from resolve_requests order by kind`;
  t.same(kinds.map((k) => k.kind), ret ? ['return', 'shipment'] : ['shipment']);
  await resolveDue({ sql, sourceId: 'src-1', client: clientFor(1), now: future });
  await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  const now = sim.world.truth();
  const [s] = await sql`select status from shipments where id = ${shipment.id}`;
  t.equal(s.status, now.shipments.find((x) => x.id === shipment.id)?.status, 'the shipment as the provider holds it');
  if (ret) {
    const [r] = await sql`select status, client_id from returns where id = ${ret.id}`;
    t.same({ ...r }, { status: now.returns.find((x) => x.id === ret.id)?.status, client_id: 'client-1' });
  }
});
