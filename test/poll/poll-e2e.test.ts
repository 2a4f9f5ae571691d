import t from 'tap';
import { MINUTE } from '../../src/config.js';
import { buildApp } from '../../src/app.js';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { getPollStatus } from '../../src/poll/cursors.js';
import { createWebhookSender } from '../harness/simulator/index.js';
import { pollSetup } from './poll-setup.js';
import { reshape } from '../harness/simulator/shapes.js';
import { resolveDue } from '../../src/poll/resolve.js';
import { createProviderClient } from '../../src/provider/client.js';
import { createRateBudget } from '../../src/provider/rate-budget.js';
import { API_VERSION } from '../../src/provider/shapes.js';

// End to end: the simulator sends webhooks (10% never sent) to a listening wharf; the drain applies them; one poll
// cycle of every stream, drained through the same path, makes the database equal the provider's world.

const VARIANTS = [
  { name: 'resource bodies, 2026-07 topics, orders listed newest first', contract: false },
  {
    name: 'the documented contract: 2026-01 topics only, order-centric and per-shipment bodies, arbitrary order, exclusive bounds',
    contract: true,
  },
] as const;

for (const variant of VARIANTS)
t.test(`with 10% of webhooks dropped, one poll cycle makes the database equal the world (${variant.name})`, async (t) => {
  const { world, sql, db, config, poll, sim } = await pollSetup(t, {
    worldOptions: { seed: 21, clients: 2, ordersPerClient: 60, webhookVersion: variant.contract ? '2026-01' : '2026-07' },
    orderListing: variant.contract ? { sort: 'arbitrary', bounds: 'exclusive' } : undefined,
    rateLimit: false,
  });
  for (const c of world.clients) await sql`update sources set client_id = ${`client-${c.id}`} where id = ${`c${c.id}`}`;
  // Storage charges are attributed through inventory items wharf knows (seeded by an operator, not announced).
  for (const item of world.truth().inventory) {
    await sql`insert into inventory_items (id, source_id, client_id)
              values (${item.id}, ${`c${item.client_id}`}, ${`client-${item.client_id}`})`;
  }
  const app = await buildApp({ config, db });
  t.teardown(() => app.close());
  const base = await app.listen({ port: 0, host: '127.0.0.1' });

  const sender = createWebhookSender({
    target: (clientId) => `${base}/webhooks/shipbob/c${clientId}`,
    secretFor: (clientId) => [world.clients[clientId - 1].secret],
    dropRate: 0.1,
    duplicateRate: 0.05,
    reorderWindow: 16,
    seed: 3,
  });
  for (let i = 0; i < 5; i++) {
    const changes = world.step({ newOrders: 8, updates: 40, billing: 10, durationMs: 30_000 });
    sender.enqueue(variant.contract ? reshape(reshape(changes, 'per_shipment'), 'order_centric') : changes);
  }
  await sender.drain();
  t.ok(sender.stats.dropped > 10, `${sender.stats.dropped} webhooks never sent`);
  t.equal(sender.stats.failed, 0, 'every sent webhook was accepted');
  await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  if (variant.contract) {
    // Order-centric deliveries named orders: fetched by id (GET /order/{id}), then applied like the rest.
    const [{ n }] = await sql`select count(*)::int as n from resolve_requests`;
    t.ok(n > 0, `${n} orders to fetch by id`);
    for (const c of world.clients) {
      const client = createProviderClient({
        baseUrl: sim.url,
        version: API_VERSION,
        token: c.token,
        budget: createRateBudget(sql, { token: c.token, callsPerMinute: 60_000 }),
      });
      await resolveDue({ sql, sourceId: `c${c.id}`, client, now: () => new Date(Date.now() + MINUTE) });
    }
    await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  }
  const before = await compare();
  t.ok(before.shipments.wrong > 0, `webhooks alone leave ${before.shipments.wrong} shipments wrong or missing`);

  world.advance(MINUTE);
  for (const c of world.clients) {
    await poll(c.id, 'orders');
    await poll(c.id, 'transactions');
  }
  await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  for (const c of world.clients) await poll(c.id, 'timelines');
  for (const c of world.clients) await poll(c.id, 'returns'); // for the charges on returns whose webhooks were dropped
  const drained = await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  t.equal(drained.dead, 0);

  const after = await compare();
  t.same(after.shipments.mismatches, [], `all ${after.shipments.checked} shipments match the world (status, client)`);
  t.same(after.transactions.mismatches, [], `all ${after.transactions.checked} transactions match (attribution)`);
  const [dead] = await sql`select count(*)::int as n from inbox_events where status = 'dead'`;
  t.equal(dead.n, 0, 'nothing dead-lettered');

  const timelines = await sql<{ id: string; n: number }[]>`
    select s.id, count(tl.*)::int as n from shipments s join shipment_timeline tl on tl.shipment_id = s.id
     where s.timeline_checked_at is not null group by s.id`;
  t.ok(timelines.length > 0, `${timelines.length} timelines fetched`);
  for (const row of timelines) {
    const s = world.truth().shipments.find((x) => x.id === Number(row.id)) as { client_id: number; id: number };
    t.equal(row.n, world.timeline(s.client_id, s.id)?.length, `shipment ${row.id}: every timeline entry stored`);
  }

  const status = await getPollStatus(sql);
  const catches = status.reduce((n, s) => n + s.catches, 0);
  t.ok(catches > 0, `the drain counted ${catches} poll catches (events no webhook brought)`);
  t.equal(status.length, 8, 'two sources, four streams each');

  /** Shipments (status, client) and transactions (existence, amount, client where the truth has one). */
  async function compare() {
    const truth = world.truth();
    const ships = new Map(
      (await sql<{ id: string; status: string; client_id: string | null }[]>`select id, status, client_id from shipments`).map(
        (s) => [Number(s.id), s],
      ),
    );
    const shipMismatches: string[] = [];
    for (const s of truth.shipments) {
      const mine = ships.get(s.id);
      if (mine?.status !== s.status || mine.client_id !== `client-${s.client_id}`) {
        shipMismatches.push(`${s.id}: ${mine?.status}/${mine?.client_id} vs ${s.status}/client-${s.client_id}`);
      }
    }
    const txns = new Map(
      (
        await sql<{ transaction_id: string; amount: number; client_id: string | null }[]>`
          select transaction_id, amount::float8 as amount, client_id from transactions`
      ).map((x) => [x.transaction_id, x]),
    );
    const txnMismatches: string[] = [];
    let txnChecked = 0;
    for (const x of truth.transactions) {
      txnChecked++;
      const mine = txns.get(x.transaction_id);
      const want = x.client_id === null ? null : `client-${x.client_id}`;
      if (mine?.amount !== x.amount || mine.client_id !== want) {
        txnMismatches.push(`${x.transaction_id} (${x.reference_type}): ${JSON.stringify(mine)} vs ${want}`);
      }
    }
    return {
      shipments: { wrong: shipMismatches.length, mismatches: shipMismatches.slice(0, 5), checked: truth.shipments.length },
      transactions: { mismatches: txnMismatches.slice(0, 5), checked: txnChecked },
    };
  }
});
