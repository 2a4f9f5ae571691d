import t from 'tap';
import { createDb } from '../../src/db/client.js';
import { applyChunk } from '../../src/drain/apply-chunk.js';
import { drainChunk, drainInbox } from '../../src/drain/drain-inbox.js';
import { claimInboxEventsById } from '../../src/inbox/claim.js';
import { freshDatabase } from '../helper.js';
import { at, chargeBody, insertInbox, insertSources, shipmentBody } from '../apply/factory.js';

// Tenant isolation in the drain (docs/tenancy.md): the source that stored an entity first owns it; another source's
// event about it is dead with its reason, counted, never applied. And no event time from the future pins a row.

const order = (id: number, t: number, over: Record<string, unknown> = {}) => ({
  id,
  status: 'Processing',
  channel: { id: 1, name: 'c' },
  shipments: [shipmentBody(id - 900_000, t)],
  event_time: at(t),
  ...over,
});
const inboxRow = async (sql: Parameters<typeof insertInbox>[0], id: number) =>
  (await sql`select status, last_error from inbox_events where id = ${id}`)[0];

t.test("another source's order, even signed correctly and dated 2250, is refused; the owner's later update lands", async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 2);
  await insertInbox(sql, [{ sourceId: 'src-1', topic: 'order.shipped', body: order(900_011, 1) }]);
  t.equal((await drainChunk(sql, 500)).processed, 1);

  const [hijack] = await insertInbox(sql, [
    {
      sourceId: 'src-2',
      topic: 'order.shipped',
      body: order(900_011, 1, { status: 'Hijacked', event_time: '2250-01-01T00:00:00Z', shipments: [shipmentBody(11, 1, { status: 'Hijacked', event_time: '2250-01-01T00:00:00Z' })] }),
    },
  ]);
  const r = await drainChunk(sql, 500);
  t.same({ refused: r.refused, dead: r.dead, processed: r.processed }, { refused: 1, dead: 1, processed: 0 }, 'refused, dead, counted');
  t.same({ ...(await inboxRow(sql, hijack)) }, { status: 'dead', last_error: 'refused: order:900011 belongs to another source' });
  const [o] = await sql`select source_id, client_id, status from orders where id = 900011`;
  t.same({ ...o }, { source_id: 'src-1', client_id: 'client-1', status: 'Processing' }, 'the order is untouched');
  const [s] = await sql`select source_id, client_id, status from shipments where id = 11`;
  t.same({ ...s }, { source_id: 'src-1', client_id: 'client-1', status: 'Processing' }, 'its shipment too');

  await insertInbox(sql, [{ sourceId: 'src-1', topic: 'order.shipped', body: order(900_011, 5, { status: 'Fulfilled' }) }]);
  t.equal((await drainChunk(sql, 500)).processed, 1);
  const [after] = await sql`select status from orders where id = 900011`;
  t.equal(after.status, 'Fulfilled', "the owner's genuine later update is applied");
});

t.test('shipments, timelines, deliveries, returns and charges of another source are refused; reads stay within a source', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 2);
  await insertInbox(sql, [
    { sourceId: 'src-1', topic: 'order.shipment.exception', body: shipmentBody(21, 1) },
    { sourceId: 'src-1', topic: 'return.created', body: { id: 300_021, original_shipment_id: 21, status: 'AwaitingArrival', event_time: at(1) } },
    { sourceId: 'src-1', topic: 'billing.charge.created', body: chargeBody('T-21', 21, 1) },
  ]);
  t.equal((await drainChunk(sql, 500)).processed, 3);

  const ids = await insertInbox(sql, [
    { sourceId: 'src-2', topic: 'order.shipment.delivered', body: shipmentBody(21, 9, { status: 'Completed', delivery_date: at(9) }) },
    {
      sourceId: 'src-2',
      topic: 'poll.shipment.timeline',
      via: 'poll',
      body: { shipment_id: 21, fetched_at: at(9), timeline: [{ log_type_id: 609, log_type_name: 'Delivered', log_type_text: 'x', timestamp: at(9), metadata: null }] },
    },
    { sourceId: 'src-2', topic: 'return.completed', body: { id: 300_021, original_shipment_id: 21, status: 'Completed', event_time: at(9) } },
    { sourceId: 'src-2', topic: 'billing.charge.created', body: chargeBody('T-21', 21, 9, { amount: 999 }) },
    // Its own charge, on src-1's shipment: never attributed to src-1's client.
    { sourceId: 'src-2', topic: 'billing.charge.created', body: chargeBody('T-22', 21, 9) },
    // Its own return of src-1's shipment: the client is not src-1's.
    { sourceId: 'src-2', topic: 'return.created', body: { id: 300_022, original_shipment_id: 21, status: 'AwaitingArrival', event_time: at(9) } },
  ]);
  const r = await drainChunk(sql, 500);
  t.equal(r.refused, 4, 'four events refused');
  const rows = await sql`select id::int, status, last_error from inbox_events where id = any(${ids}::bigint[]) order by id`;
  t.same(
    rows.map((x) => x.last_error),
    [
      'refused: shipment:21 belongs to another source',
      'refused: shipment:21 belongs to another source',
      'refused: return:300021 belongs to another source',
      'refused: transaction:T-21 belongs to another source',
      null,
      null,
    ],
  );
  const [s] = await sql`select status, delivered_at, source_id from shipments where id = 21`;
  t.same({ ...s }, { status: 'Processing', delivered_at: null, source_id: 'src-1' }, 'no status, no delivery from src-2');
  t.equal((await sql`select count(*)::int as n from shipment_timeline`)[0].n, 0, 'no timeline entry from src-2');
  const [ret] = await sql`select status, source_id from returns where id = 300021`;
  t.same({ ...ret }, { status: 'AwaitingArrival', source_id: 'src-1' });
  const txns = await sql`select transaction_id, source_id, amount::float8 as amount, client_id, attribution_status from transactions order by 1`;
  t.same(
    txns.map((x) => ({ ...x })),
    [
      { transaction_id: 'T-21', source_id: 'src-1', amount: 4.25, client_id: 'client-1', attribution_status: 'attributed' },
      { transaction_id: 'T-22', source_id: 'src-2', amount: 4.25, client_id: null, attribution_status: 'pending' },
    ],
    "src-2's charge on src-1's shipment is not attributed to src-1's client",
  );
  const [own] = await sql`select client_id from returns where id = 300022`;
  t.equal(own.client_id, 'client-2', "src-2's return takes its own source's client, not the shipment's");

  // The catch-up follows the same rule: src-1's shipment changing does not attribute src-2's pending charge.
  await insertInbox(sql, [{ sourceId: 'src-1', topic: 'order.shipment.exception', body: shipmentBody(21, 20, { status: 'Exception' }) }]);
  const again = await drainChunk(sql, 500);
  t.equal(again.attributed, 0);
  const [still] = await sql`select attribution_status from transactions where transaction_id = 'T-22'`;
  t.equal(still.attribution_status, 'pending');
});

t.test('two sources about one new entity in one chunk: the first row decides, the other waits for the next chunk', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 2);
  const [a, b, c] = await insertInbox(sql, [
    { sourceId: 'src-1', topic: 'order.shipped', body: order(900_031, 1) },
    { sourceId: 'src-2', topic: 'order.shipped', body: order(900_031, 2, { status: 'Hijacked' }) },
    { sourceId: 'src-2', topic: 'order.shipment.exception', body: shipmentBody(77, 1) },
  ]);
  const first = await drainChunk(sql, 500);
  t.same({ processed: first.processed, deferred: first.deferred }, { processed: 2, deferred: 1 }, "src-2's order waits");
  t.equal((await inboxRow(sql, b)).status, 'pending');
  const second = await drainChunk(sql, 500);
  t.same({ refused: second.refused, claimed: second.claimed }, { refused: 1, claimed: 1 }, 'the next chunk refuses it');
  t.same([(await inboxRow(sql, a)).status, (await inboxRow(sql, b)).status, (await inboxRow(sql, c)).status], ['processed', 'dead', 'processed']);
  const [o] = await sql`select source_id, status from orders where id = 900031`;
  t.same({ ...o }, { source_id: 'src-1', status: 'Processing' });
});

t.test('when the stored owner is the later row of a chunk, the earlier row is refused and the owner applied', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 2);
  await insertInbox(sql, [{ sourceId: 'src-2', topic: 'order.shipped', body: order(900_041, 1) }]);
  await drainChunk(sql, 500);
  const [foreign, owner] = await insertInbox(sql, [
    { sourceId: 'src-1', topic: 'order.shipped', body: order(900_041, 3, { status: 'Foreign' }) },
    { sourceId: 'src-2', topic: 'order.shipped', body: order(900_041, 4, { status: 'Fulfilled' }) },
  ]);
  // drainInbox goes on while a chunk leaves rows deferred, even when the chunk was short.
  const r = await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  t.same({ refused: r.refused, processed: r.processed, chunks: r.chunks }, { refused: 1, processed: 1, chunks: 2 });
  t.same([(await inboxRow(sql, foreign)).status, (await inboxRow(sql, owner)).status], ['dead', 'processed']);
  const [o] = await sql`select source_id, status from orders where id = 900041`;
  t.same({ ...o }, { source_id: 'src-2', status: 'Fulfilled' });
});

t.test('an event time beyond received_at + the tolerance is clamped there: it cannot pin a row', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  const [pin] = await insertInbox(sql, [
    { sourceId: 'src-1', topic: 'order.shipment.exception', body: shipmentBody(51, 1, { status: 'Pinned', event_time: '2250-01-01T00:00:00Z' }) },
  ]);
  // It arrived an hour ago: its version is clamped to an hour ago + 5 minutes.
  await sql`update inbox_events set received_at = now() - interval '1 hour' where id = ${pin}`;
  t.equal((await drainChunk(sql, 500, { futureToleranceMs: 5 * 60_000 })).clamped, 1, 'counted');
  const [stored] = await sql`select status, event_time, (select received_at from inbox_events where id = ${pin}) as received from shipments where id = 51`;
  t.equal(stored.status, 'Pinned', 'the event is applied (clamped, not dropped)');
  t.equal(stored.event_time.getTime(), stored.received.getTime() + 5 * 60_000, 'its version is received_at + tolerance');

  const genuine = new Date(Date.now() - 30 * 60_000).toISOString();
  await insertInbox(sql, [{ sourceId: 'src-1', topic: 'order.shipment.exception', body: shipmentBody(51, 2, { status: 'Delivered', event_time: genuine }) }]);
  await drainChunk(sql, 500, { futureToleranceMs: 5 * 60_000 });
  const [after] = await sql`select status from shipments where id = 51`;
  t.equal(after.status, 'Delivered', 'a genuine later update (30 minutes ago) is newer than the clamped one');
});

t.test('a refusal is exact under concurrency: a chunk racing another source for a new entity sees the committed owner', async (t) => {
  const a = await freshDatabase(t, { max: 2 });
  const { sql } = a;
  await insertSources(sql, 2);
  const [first, second] = await insertInbox(sql, [
    { sourceId: 'src-1', topic: 'order.shipped', body: order(900_061, 1) },
    { sourceId: 'src-2', topic: 'order.shipped', body: order(900_061, 2, { status: 'Hijacked' }) },
  ]);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let wrote!: () => void;
  const written = new Promise<void>((r) => (wrote = r));
  // Chunk 1 (src-1) inserts the order and holds its transaction open.
  const one = sql.begin(async (tx) => {
    const r = await applyChunk(tx, await claimInboxEventsById(tx, [first]));
    wrote();
    await held;
    return r;
  });
  await written;
  // Chunk 2 (src-2) starts while the order is not committed: its insert waits on the row, then sees src-1's.
  const deadline = Date.now() + 20_000;
  const other = createDb({ url: a.url, max: 1 });
  t.teardown(() => other.close());
  const two = other.sql.begin(async (tx) => applyChunk(tx, await claimInboxEventsById(tx, [second])));
  let waited = false;
  while (!waited && Date.now() < deadline) {
    const [w] = await sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`;
    waited = w.n > 0;
    if (!waited) await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(waited, "chunk 2 waited on chunk 1's uncommitted row (the race happened)");
  release();
  const [r1, r2] = await Promise.all([one, two]);
  t.same({ refused: r1.refused, refused2: r2.refused }, { refused: 0, refused2: 1 }, 'the second is refused, not silently dropped');
  t.equal((await inboxRow(sql, second)).status, 'dead');
  const [o] = await sql`select source_id, status from orders where id = 900061`;
  t.same({ ...o }, { source_id: 'src-1', status: 'Processing' });
});
