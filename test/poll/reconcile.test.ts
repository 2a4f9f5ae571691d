import t from 'tap';
import { MINUTE } from '../../src/config.js';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { reconcileSource, reconcileStatus, type ReconcileWindowResult } from '../../src/poll/reconcile.js';
import { readStatus } from '../../src/ops/status.js';
import { pollSetup } from './poll-setup.js';

// Reconciliation against the provider's own counts (issue #16): loss that no webhook or incremental poll would bring
// back (rows deleted from wharf's tables) is found by comparing total-count per closed day, and repaired. An order
// counts only with every shipment the provider listed on it, so one lost shipment of a multi-shipment order shows too.

const DAYS = 32;

t.test('lost orders and shipments of one source, one shipment of multi-shipment orders included, are found at one call per complete window and restored', async (t) => {
  // The simulator's 150/min limit is off: this test makes ~200 calls within seconds, and a 429 retried would count as
  // a second call of a complete window (wharf's own rate budget still runs, set high by pollSetup).
  const { world, sim, poll, sql, context } = await pollSetup(t, {
    worldOptions: { seed: 21, clients: 2, ordersPerClient: 200, historyDays: 30, maxShipmentsPerOrder: 3 },
    rateLimit: false,
  });
  world.advance(MINUTE);
  await poll(1, 'orders');
  await poll(2, 'orders');
  const drained = await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  t.equal(drained.emptied, true);
  const snapshot = async () => ({
    orders: (await sql`select id::text from orders where source_id = 'c1' order by id`).map((r) => r.id as string),
    shipments: (await sql`select id::text from shipments where source_id = 'c1' order by id`).map((r) => r.id as string),
    // The other source's rows with the version each holds: untouched means not rewritten either.
    other: await sql`
      select 'o' as k, id::text, event_inbox_id::text, updated_at from orders where source_id = 'c2'
      union all select 's', id::text, event_inbox_id::text, updated_at from shipments where source_id = 'c2' order by 1, 2`,
  });
  const before = await snapshot();
  t.ok(before.orders.length >= 150, `${before.orders.length} orders of c1 applied`);
  const multi = (
    await sql`select order_id::text as id from shipments where source_id = 'c1' group by order_id having count(*) >= 2 order by 1`
  ).map((r) => r.id as string);
  t.ok(multi.length >= 30, `${multi.length} of c1's orders have several shipments`);
  const [counts] = await sql`
    select count(*) filter (where shipment_count is null)::int as unknown,
           count(*) filter (where shipment_count <> (select count(*) from shipments s where s.order_id = o.id))::int as differ
      from orders o`;
  t.same(counts, { unknown: 0, differ: 0 }, 'every order stores how many shipments the provider listed, as many as held');

  /** Reconciles c1; checks every window's cost: one call when complete, and what the simulator saw equals it. */
  const reconcile = async (): Promise<ReconcileWindowResult[]> => {
    const calls = sim.stats.total;
    const windows = await reconcileSource(context(1), DAYS);
    t.equal(windows.length, DAYS);
    t.equal(sim.stats.total - calls, windows.reduce((n, w) => n + w.calls, 0), 'the calls counted are the calls the provider received');
    t.same(windows.filter((w) => w.state === 'reconciled' && w.calls !== 1).map((w) => w.windowStart), [], 'a window the provider reports complete costs exactly one call');
    return windows;
  };
  const dayOf = async (orderIds: string[]) =>
    new Set(
      (await sql<{ d: Date }[]>`select distinct date_trunc('day', last_update_at, 'UTC') as d from orders where id::text = any(${orderIds}::text[])`).map((r) =>
        r.d.toISOString(),
      ),
    );

  // Nothing missing yet: every window reconciles at one call each.
  const clean = await reconcile();
  t.same(clean.filter((w) => w.state !== 'reconciled').map((w) => [w.windowStart.toISOString(), w.providerCount, w.wharfCount]), [], 'every closed day matches');

  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pick = <T>(xs: readonly T[], share: number) => xs.filter(() => rnd() < share);

  // One shipment of one multi-shipment order: the order is still held, with another shipment; the provider's count of
  // orders is unchanged, yet that order's window is short (it no longer counts as complete), and only that one.
  const single = multi[Math.floor(rnd() * multi.length)];
  const [lone] = await sql`select id::text from shipments where order_id = ${single}::bigint order by id desc limit 1`;
  await sql`delete from shipments where id = ${lone.id}::bigint`;
  const once = await reconcile();
  const shortOnce = once.filter((w) => w.state === 'short');
  t.same(shortOnce.map((w) => w.windowStart.toISOString()), [...(await dayOf([single]))], 'exactly the window of that order is short');
  t.same(shortOnce.map((w) => [w.providerCount, w.wharfCount + 1, w.repolled]), shortOnce.map((w) => [w.providerCount, w.providerCount, 1]), 'one order counted short, re-sent');
  await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  t.same((await snapshot()).shipments, before.shipments, 'the lost shipment is restored');

  // Loss: a random sample (seeded) of c1's orders (with their shipments), every shipment of another sample of orders
  // (the order rows kept), and one shipment each of a sample of multi-shipment orders (the others kept).
  const lostOrders = pick(before.orders, 0.08);
  const rest = before.orders.filter((id) => !lostOrders.includes(id));
  const stripped = pick(rest, 0.08);
  const partial = pick(multi.filter((id) => rest.includes(id) && !stripped.includes(id)), 0.15);
  if (!partial.includes(single) && rest.includes(single) && !stripped.includes(single)) partial.push(single);
  const strippedShipments = (await sql`select id::text from shipments where order_id::text = any(${stripped}::text[])`).map((r) => r.id as string);
  const partialShipments = (
    await sql`select distinct on (order_id) id::text from shipments where order_id::text = any(${partial}::text[]) order by order_id, id`
  ).map((r) => r.id as string);
  t.ok(lostOrders.length > 5 && strippedShipments.length > 5 && partialShipments.length >= 3,
    `${lostOrders.length} orders, every shipment of ${stripped.length} orders and one shipment of ${partial.length} multi-shipment orders lost`);
  await sql`delete from shipments where order_id::text = any(${lostOrders}::text[])`;
  await sql`delete from orders where id::text = any(${lostOrders}::text[])`;
  await sql`delete from shipments where id::text = any(${[...strippedShipments, ...partialShipments]}::text[])`;

  // An incremental poll does not bring them back (nothing changed at the provider).
  world.advance(MINUTE);
  const incremental = await poll(1, 'orders');
  t.equal(incremental.inserted, 0, 'the incremental poll finds nothing new');

  const repair = await reconcile();
  const short = repair.filter((w) => w.state === 'short');
  const touchedDays = await dayOf([...stripped, ...partial]);
  for (const d of touchedDays) t.ok(short.some((w) => w.windowStart.toISOString() === d), `the window of ${d} (an order missing shipments) is short`);
  t.ok(short.every((w) => w.calls >= 2), 'a short window is re-read');
  t.equal(short.reduce((n, w) => n + w.repolled, 0), lostOrders.length + stripped.length + partial.length, 'every damaged order is re-sent, and only those');
  const status = await reconcileStatus(sql);
  const c1 = status.find((s) => s.sourceId === 'c1');
  t.equal(c1?.short.length, short.length, 'status lists the windows still short');
  const ops = await readStatus(sql, { staleAfterMs: 60_000 });
  t.equal(ops.reconcile.find((r) => r.sourceId === 'c1')?.short.length, short.length, 'ops status shows them');

  await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  const after = await snapshot();
  t.same(after.orders, before.orders, 'every lost order is restored');
  t.same(after.shipments, before.shipments, 'every lost shipment is restored, the one of each multi-shipment order too');
  t.same(after.other, before.other, 'the other source is untouched');

  const again = await reconcile();
  t.same(again.filter((w) => w.state !== 'reconciled').length, 0, 'then every window is reconciled, at one call each');
  const final = (await reconcileStatus(sql)).find((s) => s.sourceId === 'c1');
  t.same(final?.short, [], 'nothing short');
  t.ok(final?.newestReconciled, 'the newest reconciled window is known');
  t.equal((await reconcileStatus(sql)).find((s) => s.sourceId === 'c2'), undefined, 'the other source was not reconciled (no window recorded)');
});

t.test('reconciled windows older than those checked are forgotten; one still short stays listed', async (t) => {
  const { world, poll, sql, context } = await pollSetup(t, { worldOptions: { seed: 5, clients: 1, ordersPerClient: 40, historyDays: 10 } });
  world.advance(MINUTE);
  await poll(1, 'orders');
  await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  await reconcileSource(context(1), 12);
  const [{ n: twelve }] = await sql`select count(*)::int as n from reconcile_windows`;
  t.equal(twelve, 12);
  const oldest = await sql<{ start: Date }[]>`select window_start as start from reconcile_windows order by window_start limit 2`;
  await sql`update reconcile_windows set state = 'short' where window_start = ${oldest[0].start}`;
  const kept = await reconcileSource(context(1), 5);
  t.equal(kept.length, 5);
  const rows = await sql<{ start: Date; state: string }[]>`select window_start as start, state from reconcile_windows order by window_start`;
  t.same(rows.map((r) => r.state), ['short', 'reconciled', 'reconciled', 'reconciled', 'reconciled', 'reconciled'], 'the 5 checked, and the short one outside them');
  t.same(rows[0].start, oldest[0].start);
});
