import t from 'tap';
import type { Order, Shipment, TimelineEntry, Transaction, TransactionPage } from '../../src/provider/shapes.js';
import { startSimulator } from './simulator/index.js';

// The simulator's REST API, over real HTTP on loopback.

const sim = await startSimulator({ worldOptions: { seed: 3, clients: 2, ordersPerClient: 300 }, rateLimit: false });
t.teardown(() => sim.close());
const [alice, bob] = sim.world.clients;
const truth = sim.world.truth();

/** `path` is relative to the versioned API, or absolute (like next-page). */
async function api(path: string, init: { token?: string; method?: string; body?: unknown } = {}) {
  const res = await fetch(new URL(path, `${sim.apiUrl}/`), {
    method: init.method ?? 'GET',
    headers: {
      ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }),
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as unknown };
}

const byUpdate = (a: { last_update_at?: string; id: number }, b: { last_update_at?: string; id: number }) =>
  (a.last_update_at ?? '').localeCompare(b.last_update_at ?? '') || a.id - b.id;

t.test(
  'pages through orders with next-page until the filtered set is complete, newest first by default (not by update time)',
  async (t) => {
    const from = '2025-12-25T00:00:00.000Z';
    const to = '2026-01-10T00:00:00.000Z';
    const expected = truth.orders
      .filter((o) => o.client_id === alice.id && o.last_update_at > from && o.last_update_at < to)
      .sort((a, b) => b.id - a.id)
      .map((o) => o.id);
    t.ok(expected.length > 3 * 25, 'the window spans several pages');

    const seen: number[] = [];
    let path: string | null = `order?LastUpdateStartDate=${from}&LastUpdateEndDate=${to}&Limit=25`;
    for (let page = 1; path; page++) {
      const res = await api(path, { token: alice.token });
      t.equal(res.status, 200);
      t.equal(res.headers.get('page-number'), String(page));
      t.equal(res.headers.get('total-count'), String(expected.length));
      t.equal(res.headers.get('total-pages'), String(Math.ceil(expected.length / 25)));
      seen.push(...(res.body as Order[]).map((o) => o.id));
      path = res.headers.get('next-page');
      if (path) t.match(path, /^\/2026-01\/order\?.*Page=\d+/, 'next-page is a path under the version');
    }
    t.same(seen, expected);
  },
);

t.test('LastUpdate bounds are exclusive by default ("updated later than"), inclusive when set so; names ignore case', async (t) => {
  const one = truth.orders.find((o) => o.client_id === alice.id) as (typeof truth.orders)[number];
  const exactly = () => api(`order?lastupdatestartdate=${one.last_update_at}&LASTUPDATEENDDATE=${one.last_update_at}`, { token: alice.token });
  t.same((await exactly()).body, [], 'exclusive: nothing is later than and earlier than one instant');
  sim.orderListing.bounds = 'inclusive';
  const exact = await exactly();
  sim.orderListing.bounds = 'exclusive';
  t.ok((exact.body as Order[]).some((o) => o.id === one.id));
  t.ok((exact.body as Order[]).every((o) => o.last_update_at === one.last_update_at));
  sim.orderListing.sort = 'last_update';
  const sorted = (await api('order?Limit=250', { token: alice.token })).body as Order[];
  sim.orderListing.sort = 'newest';
  t.same(sorted.map((o) => o.id), sorted.slice().sort(byUpdate).map((o) => o.id), 'the last_update order, when asked for');
  const oldest = (await api('order?Limit=250&SortOrder=Oldest', { token: alice.token })).body as Order[];
  t.same(oldest.map((o) => o.id), oldest.map((o) => o.id).sort((a, b) => a - b), 'SortOrder=Oldest: by creation');

  const all = await api('order?Limit=1', { token: alice.token });
  t.equal(all.headers.get('total-count'), String(truth.orders.filter((o) => o.client_id === alice.id).length));
});

t.test('refuses Limit above 250 and malformed parameters with 400', async (t) => {
  t.equal((await api('order?Limit=250', { token: alice.token })).status, 200);
  const tooMany = await api('order?Limit=251', { token: alice.token });
  t.equal(tooMany.status, 400);
  t.match(tooMany.body, { statusCode: 400, message: /Limit/ });
  t.equal((await api('order?Page=0', { token: alice.token })).status, 400);
  t.equal((await api('order?LastUpdateStartDate=yesterday', { token: alice.token })).status, 400);
});

t.test('answers 401 without a known token and never shows another client its records', async (t) => {
  t.match(await api('order'), { status: 401, body: { statusCode: 401 } });
  t.equal((await api('order', { token: 'pat_nope' })).status, 401);

  const bobsShipment = truth.shipments.find((s) => s.client_id === bob.id) as (typeof truth.shipments)[number];
  t.equal((await api(`shipment/${bobsShipment.id}`, { token: alice.token })).status, 404);
  t.equal((await api(`shipment/${bobsShipment.id}/timeline`, { token: alice.token })).status, 404);
  t.equal((await api('shipment/1', { token: bob.token })).status, 404);

  const orders = await api('order?Limit=250', { token: bob.token });
  t.ok((orders.body as Order[]).every((o) => o.channel.id === bob.channel.id));
  const txns = await api('./transactions:query', { token: bob.token, method: 'POST', body: { page_size: 1000 } });
  const bobsTxns = new Set(
    truth.transactions.filter((x) => x.source_client_id === bob.id).map((x) => x.transaction_id),
  );
  t.ok((txns.body as TransactionPage).items.every((x) => bobsTxns.has(x.transaction_id)));
});

t.test('serves a shipment and its timeline as the world holds them', async (t) => {
  const delivered = truth.shipments.find((s) => s.client_id === bob.id && s.delivery_date !== null);
  if (!delivered) throw new Error('seed 3 has a delivered shipment');
  const { client_id, ...shipment } = delivered;
  t.same((await api(`shipment/${shipment.id}`, { token: bob.token })).body, shipment);

  const timeline = (await api(`shipment/${shipment.id}/timeline`, { token: bob.token })).body as TimelineEntry[];
  t.equal(timeline[0].log_type_id, 601);
  t.equal(timeline.at(-1)?.log_type_id, 609);
  t.equal(timeline.at(-1)?.timestamp, shipment.delivery_date);
  t.ok(timeline.every((e) => [601, 602, 603, 604, 605, 607, 608, 609, 611].includes(e.log_type_id)));
});

t.test('accepts the dated versions and refuses others', async (t) => {
  for (const version of ['2025-07', '2026-01', '2026-07']) {
    const res = await fetch(`${sim.url}/${version}/order?Limit=1`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    t.equal(res.status, 200, version);
  }
  t.equal((await fetch(`${sim.url}/1.0/order`, { headers: { authorization: `Bearer ${alice.token}` } })).status, 404);
});

t.test('cursor paging over transactions covers the window exactly once', async (t) => {
  const from = '2025-12-01T00:00:00.000Z';
  const to = sim.world.truth().now;
  const expected = truth.transactions
    .filter((x) => x.source_client_id === alice.id && x.charge_date >= from && x.charge_date <= to)
    .map((x) => x.transaction_id)
    .sort();

  const seen: string[] = [];
  let page = (
    await api('./transactions:query', {
      token: alice.token,
      method: 'POST',
      body: { from_date: from, to_date: to, page_size: 100 },
    })
  ).body as TransactionPage;
  t.equal(page.prev, null);
  seen.push(...page.items.map((x) => x.transaction_id));
  while (page.next) {
    // The body says something else entirely: the Cursor must win.
    const res = await api(`./transactions:query?Cursor=${page.next}`, {
      token: alice.token,
      method: 'POST',
      body: { from_date: '2030-01-01T00:00:00Z', page_size: 1 },
    });
    page = res.body as TransactionPage;
    t.ok(page.items.length <= 100 && page.items.length > 0);
    t.type(page.prev, 'string');
    seen.push(...page.items.map((x) => x.transaction_id));
  }
  t.equal(new Set(seen).size, seen.length, 'no transaction twice');
  t.same(seen.slice().sort(), expected);
});

t.test('the transaction query defaults to the last 7 days and filters as asked', async (t) => {
  const weekAgo = new Date(sim.world.now() - 7 * 24 * 3600_000).toISOString();
  const page = (await api('./transactions:query', { token: alice.token, method: 'POST', body: { page_size: 1000 } }))
    .body as TransactionPage;
  t.ok(page.items.length > 0);
  t.ok(page.items.every((x) => x.charge_date >= weekAgo));

  const filtered = (
    await api('./transactions:query', {
      token: alice.token,
      method: 'POST',
      body: { page_size: 1000, reference_types: ['FC'], sort_order: 'Descending' },
    })
  ).body as TransactionPage;
  t.ok(filtered.items.length > 0 && filtered.items.every((x: Transaction) => x.reference_type === 'FC'));
  const dates = filtered.items.map((x) => x.charge_date);
  t.same(dates, dates.slice().sort().reverse());

  const tooBig = await api('./transactions:query', { token: alice.token, method: 'POST', body: { page_size: 1001 } });
  t.equal(tooBig.status, 400);
  t.equal((await api('./transactions:query?Cursor=garbage', { token: alice.token, method: 'POST' })).status, 400);
});

t.test('creates (200, string id, secret shown once), lists ({items}, no secret) and deletes (204) subscriptions per client', async (t) => {
  const created = await api('webhook', {
    token: alice.token,
    method: 'POST',
    body: { topics: ['order.shipped'], url: 'https://wharf.example/webhooks/1', secret: alice.secret },
  });
  t.equal(created.status, 200);
  t.match(created.body, { id: String, secret: alice.secret, topics: ['order.shipped'], created_at: String });
  const id = (created.body as { id: string }).id;
  const list = (await api('webhook', { token: alice.token })).body as { items: Record<string, unknown>[]; next: unknown };
  t.same(list.items.map((x) => [x.id, x.enabled, 'secret' in x]), [[id, true, false]]);
  t.same(((await api('webhook', { token: bob.token })).body as { items: unknown[] }).items, []);
  t.equal((await api('webhook', { token: alice.token, method: 'POST', body: { url: 'x' } })).status, 422);
  const unknownTopic = await api('webhook', {
    token: alice.token,
    method: 'POST',
    body: { topics: ['order.delivered'], url: 'https://wharf.example/webhooks/1' },
  });
  t.equal(unknownTopic.status, 422, 'a 2026-07 topic on a 2026-01 subscription');
  const plain = await api('webhook', { token: alice.token, method: 'POST', body: { topics: ['order.shipped'], url: 'http://wharf.example/x' } });
  t.equal(plain.status, 422, 'HTTPS only (loopback excepted, for tests)');
  const res = await fetch(`${sim.apiUrl}/webhook/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${alice.token}` } });
  t.equal(res.status, 204);
  t.same(((await api('webhook', { token: alice.token })).body as { items: unknown[] }).items, []);
});

t.test('serves the truth without auth and counts requests per endpoint', async (t) => {
  const res = await fetch(`${sim.url}/_sim/truth`);
  const body = (await res.json()) as typeof truth;
  t.equal(body.shipments.length, truth.shipments.length);
  t.ok(sim.stats.byEndpoint['GET /order'] > 0);
  t.ok(sim.stats.byEndpoint['POST /transactions:query'] > 0);
  t.ok(sim.stats.byStatus['401'] >= 2);
});

t.test('rate limits each token in a sliding window and recovers after it', async (t) => {
  const limited = await startSimulator({
    worldOptions: { clients: 2, ordersPerClient: 5 },
    rateLimit: { limit: 5, windowMs: 1000 },
  });
  t.teardown(() => limited.close());
  const [a, b] = limited.world.clients;
  const get = (token: string) => fetch(`${limited.apiUrl}/order`, { headers: { authorization: `Bearer ${token}` } });

  for (let i = 4; i >= 0; i--) {
    const res = await get(a.token);
    t.equal(res.status, 200);
    t.equal(res.headers.get('x-remaining-calls'), String(i));
  }
  const refused = await get(a.token);
  t.equal(refused.status, 429);
  t.equal(refused.headers.get('x-retry-after'), '1');
  t.equal(refused.headers.get('x-remaining-calls'), '0');
  t.same(await refused.json(), { statusCode: 429, message: 'Rate limit is exceeded. Try again in 1 seconds.' });
  t.equal((await get(b.token)).status, 200, 'another token has its own window');

  await new Promise((resolve) => setTimeout(resolve, 1050));
  t.equal((await get(a.token)).status, 200, 'the window slid past the first calls');
  t.equal(limited.stats.byStatus['429'], 1);
});

t.test('injects 429s and 500s at the configured share', async (t) => {
  const faulty = await startSimulator({ worldOptions: { clients: 1, ordersPerClient: 5 }, faults: { rate500: 1 } });
  t.teardown(() => faulty.close());
  const get = () =>
    fetch(`${faulty.apiUrl}/order`, { headers: { authorization: `Bearer ${faulty.world.clients[0].token}` } });
  t.equal((await get()).status, 500);
  faulty.faults.rate500 = 0;
  faulty.faults.rate429 = 1;
  const res = await get();
  t.equal(res.status, 429);
  t.equal(res.headers.get('x-retry-after'), '1');
  faulty.faults.rate429 = 0;
  t.equal((await get()).status, 200);
  t.same(faulty.stats.byStatus, { 200: 1, 429: 1, 500: 1 });
});

t.test('serves what a step changed, found by its LastUpdate window', async (t) => {
  const from = new Date(sim.world.now() + 1).toISOString();
  const events = sim.world.step({ newOrders: 5, updates: 20, billing: 0 });
  const changed = new Set<number>();
  for (const e of events) {
    if (e.clientId !== alice.id) continue;
    if (e.topic === 'order.shipped' || e.topic === 'order.delivered') changed.add(e.payload.id);
    else if (e.topic.startsWith('order.shipment.')) changed.add((e.payload as Shipment).order_id);
  }
  t.ok(changed.size > 0);
  const res = await api(`order?LastUpdateStartDate=${from}&Limit=250`, { token: alice.token });
  t.same(new Set((res.body as Order[]).map((o) => o.id)), changed);
});
