import t from 'tap';
import { MINUTE } from '../../src/config.js';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { reconcileSource, reconcileStatus } from '../../src/poll/reconcile.js';
import { readStatus } from '../../src/ops/status.js';
import { pollSetup } from './poll-setup.js';

// Reconciliation against the provider's own counts (issue #16): loss that no webhook or incremental poll would bring
// back (rows deleted from wharf's tables) is found by comparing total-count per closed day, and repaired.

const DAYS = 32;

t.test('deleted orders and shipments of one source are restored by reconciliation; a complete window costs one call', async (t) => {
  const { world, poll, sql, context } = await pollSetup(t, { worldOptions: { seed: 21, clients: 2, ordersPerClient: 200, historyDays: 30 } });
  world.advance(MINUTE);
  await poll(1, 'orders');
  await poll(2, 'orders');
  const drained = await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  t.equal(drained.emptied, true);
  const snapshot = async () => ({
    orders: (await sql`select id::text from orders where source_id = 'c1' order by id`).map((r) => r.id),
    shipments: (await sql`select id::text from shipments where source_id = 'c1' order by id`).map((r) => r.id),
    other: (await sql`select count(*)::int as n from orders where source_id = 'c2'`)[0].n,
  });
  const before = await snapshot();
  t.ok(before.orders.length >= 150, `${before.orders.length} orders of c1 applied`);

  // Nothing missing yet: every window reconciles at one call each.
  const clean = await reconcileSource(context(1), DAYS);
  t.equal(clean.length, DAYS);
  t.same(clean.filter((w) => w.state !== 'reconciled').map((w) => [w.windowStart.toISOString(), w.providerCount, w.wharfCount]), [], 'every closed day matches');
  t.same([...new Set(clean.map((w) => w.calls))], [1], 'one call per window when nothing is missing');

  // Loss: a random sample (seeded) of c1's orders (with their shipments), and every shipment of another sample of
  // orders (the order rows kept), deleted from wharf. (The provider counts orders: one shipment lost of an order that
  // keeps another is not seen by the count; a window re-read for any reason repairs it too: docs/polling.md.)
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const lostOrders = before.orders.filter(() => rnd() < 0.1);
  const stripped = before.orders.filter((id) => !lostOrders.includes(id)).filter(() => rnd() < 0.1);
  const lostShipments = (await sql`select id::text from shipments where order_id::text = any(${stripped}::text[])`).map((r) => r.id as string);
  t.ok(lostOrders.length > 5 && lostShipments.length > 5, `${lostOrders.length} orders and ${lostShipments.length} shipments lost`);
  await sql`delete from shipments where order_id::text = any(${lostOrders}::text[])`;
  await sql`delete from orders where id::text = any(${lostOrders}::text[])`;
  await sql`delete from shipments where id::text = any(${lostShipments}::text[])`;

  // An incremental poll does not bring them back (nothing changed at the provider).
  world.advance(MINUTE);
  const incremental = await poll(1, 'orders');
  t.equal(incremental.inserted, 0, 'the incremental poll finds nothing new');

  const repair = await reconcileSource(context(1), DAYS);
  const short = repair.filter((w) => w.state === 'short');
  t.ok(short.length > 0, `${short.length} windows were short`);
  t.ok(short.every((w) => w.calls >= 2), 'a short window is re-read');
  t.same([...new Set(repair.filter((w) => w.state === 'reconciled').map((w) => w.calls))].filter((c) => c !== 1), [], 'the others cost one call');
  const status = await reconcileStatus(sql);
  const c1 = status.find((s) => s.sourceId === 'c1');
  t.equal(c1?.short.length, short.length, 'status lists the windows still short');
  const ops = await readStatus(sql, { staleAfterMs: 60_000 });
  t.equal(ops.reconcile.find((r) => r.sourceId === 'c1')?.short.length, short.length, 'ops status shows them');

  await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  const after = await snapshot();
  t.same(after.orders, before.orders, 'every lost order is restored');
  t.same(after.shipments, before.shipments, 'every lost shipment is restored');
  t.equal(after.other, before.other, 'the other source is untouched');

  const again = await reconcileSource(context(1), DAYS);
  t.same(again.filter((w) => w.state !== 'reconciled').length, 0, 'then every window is reconciled');
  t.same([...new Set(again.map((w) => w.calls))], [1]);
  const final = (await reconcileStatus(sql)).find((s) => s.sourceId === 'c1');
  t.same(final?.short, [], 'nothing short');
  t.ok(final?.newestReconciled, 'the newest reconciled window is known');
});
