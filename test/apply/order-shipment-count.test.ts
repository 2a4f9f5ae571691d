import t from 'tap';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { wharfOrderCount } from '../../src/poll/reconcile.js';
import { freshDatabase } from '../helper.js';
import { at, type InboxEventInput, insertInbox, insertSources, shipmentBody } from './factory.js';

// orders.shipment_count (what the reconciliation compares held shipments with, src/poll/reconcile.ts): the most
// shipments any version of the order listed, and each shipment's order, whatever order the events arrive in, through
// the real drain (a chunk per event, and all in one chunk).

/** Five events about order `o` (shipments 10o+1..3): two order versions listing 2 then 3 shipments, a newer one listing
 * none, the third shipment alone, and a newer version of the first shipment that names no order. */
function eventsOf(o: number): InboxEventInput[] {
  const [a, b, c] = [o * 10 + 1, o * 10 + 2, o * 10 + 3];
  const order = (sec: number, shipments?: number[]) => ({
    topic: 'order.shipped',
    body: {
      id: o,
      status: 'Processing',
      channel: { id: 1, name: 'c' },
      last_update_at: at(sec),
      event_time: at(sec),
      ...(shipments ? { shipments: shipments.map((id) => shipmentBody(id, sec, { order_id: o })) } : {}),
    },
  });
  return [
    order(10, [a, b]),
    order(20, [a, b, c]),
    order(30),
    { topic: 'order.shipment.tracking.updated', body: shipmentBody(c, 25, { order_id: o }) },
    { topic: 'order.shipment.tracking.updated', body: shipmentBody(a, 40, { order_id: undefined, status: 'Completed' }) },
  ];
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

t.test('an order holds the most shipments any version listed and each shipment its order, in every arrival order; the reconciliation count needs them all', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 2);
  const orders = permutations([0, 1, 2, 3, 4]).map((perm, i) => ({ id: 500_000 + i, perm }));
  t.equal(orders.length, 120, 'every arrival order of the five events, one order each');
  // One event per chunk, each order's five in its permutation (interleaved across orders).
  const queue: InboxEventInput[] = [];
  for (let step = 0; step < 5; step++) for (const o of orders) queue.push(eventsOf(o.id)[o.perm[step]]);
  await insertInbox(sql, queue);
  const r = await drainInbox(sql, { chunkSize: 1, budgetMs: 120_000 });
  t.match(r, { dead: 0, emptied: true });
  // The same events for 120 more orders, all in one chunk (collapsed there).
  const oneChunk = orders.map((o) => ({ id: o.id + 1000, perm: o.perm }));
  await insertInbox(sql, oneChunk.flatMap((o) => o.perm.map((k) => eventsOf(o.id)[k])));
  await drainInbox(sql, { chunkSize: 1000, budgetMs: 60_000 });

  const rows = await sql<{ id: string; shipment_count: number | null; last_update_at: Date; held: number; linked: number }[]>`
    select o.id::text, o.shipment_count, o.last_update_at,
           (select count(*)::int from shipments s where s.order_id = o.id) as held,
           (select count(*)::int from shipments s where s.id between o.id * 10 + 1 and o.id * 10 + 3 and s.order_id = o.id) as linked
      from orders o order by o.id`;
  t.equal(rows.length, 240);
  const wrong = rows.filter((x) => x.shipment_count !== 3 || x.held !== 3 || x.linked !== 3 || x.last_update_at.toISOString() !== new Date(at(30)).toISOString());
  t.same(wrong, [], 'each order: 3 listed (the most any version listed; the newest lists none), 3 held, the first shipment still under its order');

  const start = new Date(at(29));
  const end = new Date(at(31));
  t.equal(await wharfOrderCount(sql, 'src-1', start, end), 240, 'every order counts as complete');
  t.equal(await wharfOrderCount(sql, 'src-2', start, end), 0, 'another source counts none of them');
  await sql`delete from shipments where id = ${orders[7].id * 10 + 2}`;
  t.equal(await wharfOrderCount(sql, 'src-1', start, end), 239, 'one shipment lost of a three-shipment order: that order no longer counts');
  await sql`update orders set shipment_count = null where id = ${orders[7].id}`;
  t.equal(await wharfOrderCount(sql, 'src-1', start, end), 240, 'an order stored without a list counts with one shipment held');
});

t.test("an order without an update time of its own (OA's Order has none) is dated by its newest shipment, so the reconciliation finds it", async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  const body = {
    id: 777,
    status: 'Fulfilled',
    channel: { id: 1, name: 'c' },
    shipments: [shipmentBody(7771, 50, { order_id: 777 }), shipmentBody(7772, 55, { order_id: 777 })],
  };
  await insertInbox(sql, [{ topic: 'poll.order', via: 'poll', body, eventTime: at(55) }]);
  t.match(await drainInbox(sql, { chunkSize: 10, budgetMs: 30_000 }), { processed: 1, dead: 0 });
  const [row] = await sql<{ last_update_at: Date; shipment_count: number }[]>`select last_update_at, shipment_count from orders where id = 777`;
  t.same(row, { last_update_at: new Date(at(55)), shipment_count: 2 }, 'dated by its newest shipment; two listed');
  t.equal(await wharfOrderCount(sql, 'src-1', new Date(at(54)), new Date(at(56))), 1, 'counted in the window of that time');
});
