import t from 'tap';
import { applyChunk } from '../../src/drain/apply-chunk.js';
import { drainChunk, drainInbox } from '../../src/drain/drain-inbox.js';
import { claimInboxEventsById } from '../../src/inbox/claim.js';
import { storeInventoryItems } from '../../src/ops/tenancy.js';
import { createWorld } from '../harness/simulator/index.js';
import { freshDatabase } from '../helper.js';
import { latch } from '../wait.js';
import { at, chargeBody, fromChange, type InboxEventInput, insertInbox, insertSources, shipmentBody } from '../apply/factory.js';

// The drain against a real PostgreSQL: one transaction per chunk, set-based, order-independent, poison-tolerant.

/** A mix of every kind of event, `n` of them, about one entity in three seen twice. */
function mixedEvents(n: number, offset = 0): InboxEventInput[] {
  const events: InboxEventInput[] = [];
  for (let i = 0; i < n; i++) {
    const k = offset + Math.floor(i / 3) + 1;
    const kind = i % 6;
    if (kind === 0) {
      events.push({
        topic: 'order.shipped',
        body: { id: 900_000 + k, status: 'Processing', channel: { id: 1, name: 'c' }, shipments: [shipmentBody(k, i)], event_time: at(i) },
      });
    } else if (kind === 1 || kind === 2) {
      events.push({ topic: 'order.shipment.tracking.updated', body: shipmentBody(k, i, { status: 'Completed' }) });
    } else if (kind === 3) {
      events.push({ topic: 'billing.charge.created', body: chargeBody(`T${k}`, k, i) });
    } else if (kind === 4) {
      events.push({
        topic: 'return.created',
        body: { id: 300_000 + k, original_shipment_id: k, status: 'AwaitingArrival', insert_date: at(i), event_time: at(i) },
      });
    } else {
      events.push({
        topic: 'poll.shipment.timeline',
        via: 'poll',
        body: { shipment_id: k, fetched_at: at(i), timeline: [{ log_type_id: 601, log_type_name: 'Created', log_type_text: 'x', timestamp: at(i), metadata: null }] },
      });
    }
  }
  return events;
}

/** What a statement does, from its text: `insert orders`, `update inbox_events`, `lock`, `begin`. */
function statementLabel(text: string): string {
  const q = text.replace(/\s+/g, ' ').trim().toLowerCase();
  if (/^(begin|commit|rollback)/.test(q)) return q.split(' ')[0];
  if (q.includes('pg_advisory_xact_lock')) return 'lock';
  if (q.includes("set_config('synchronous_commit', 'off', true)")) return 'async commit';
  if (q.includes('skip locked') && (q.startsWith('select') || q.startsWith('with locked'))) return 'claim';
  const write = q.match(/\b(insert into|update) (?!of )(\w+)/);
  return write ? `${write[1].split(' ')[0]} ${write[2]}` : q.slice(0, 40);
}

t.test('a chunk sends the same number of statements for 10 events as for 500, at most 12, in table order', async (t) => {
  let sent: string[] = [];
  const { sql } = await freshDatabase(t, { onQuery: (q) => sent.push(statementLabel(q)) });
  await insertSources(sql, 1);
  const counts: number[] = [];
  for (const [n, offset] of [
    [10, 0],
    [500, 1000],
  ]) {
    await insertInbox(sql, mixedEvents(n, offset));
    sent = [];
    const r = await drainChunk(sql, 500);
    t.equal(r.processed, n, `${n} events processed`);
    counts.push(sent.length);
    // Pipelined statements still reach PostgreSQL in this order: lock order (no deadlock between chunks), and each
    // statement reads what the previous ones wrote (a shipment's client through its order's channel, and so on).
    t.same(sent, [
      'begin',
      'claim',
      'async commit', // for this transaction only (docs/drain.md "Durability")
      'update inbox_events',
      'insert orders', // and shipments, in the same statement
      'insert shipment_timeline',
      'insert returns',
      'insert transactions',
      'lock',
      'update transactions',
      'commit',
    ], `${n} events: statements in order`);
  }
  t.equal(counts[0], counts[1], `10 events: ${counts[0]} statements, 500 events: ${counts[1]}`);
  t.ok(counts[1] <= 12, `${counts[1]} statements per chunk, begin and commit included`);
  const [row] = await sql`select count(*)::int as n from shipment_timeline`;
  t.ok(row.n > 0, 'timeline entries stored');
});

t.test("a chunk with events about another source's entities sends one statement more, last: their re-mark as dead", async (t) => {
  let sent: string[] = [];
  const { sql } = await freshDatabase(t, { onQuery: (q) => sent.push(statementLabel(q)) });
  await insertSources(sql, 2);
  await insertInbox(sql, mixedEvents(10));
  await drainChunk(sql, 500);
  // src-2 speaks about src-1's entities (refused), among events of its own.
  await insertInbox(sql, [
    ...mixedEvents(6).map((e) => ({ ...e, sourceId: 'src-2' })),
    ...mixedEvents(6, 500).map((e) => ({ ...e, sourceId: 'src-2' })),
  ]);
  sent = [];
  const r = await drainChunk(sql, 500);
  // Six about src-1's entities; the timeline of shipment 2 is not refused: no source stored that shipment.
  t.equal(r.refused, 5, 'five refused');
  t.same(sent, [
    'begin',
    'claim',
    'async commit',
    'update inbox_events',
    'insert orders',
    'insert shipment_timeline',
    'insert returns',
    'insert transactions',
    'lock',
    'update transactions',
    'update inbox_events', // the refused rows: processed → dead, with the reason
    'commit',
  ]);
});

t.test('out-of-order versions converge to the newest; duplicates and replays change nothing', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  const statuses = ['Processing', 'LabeledCreated', 'Completed', 'Exception', 'Cancelled'];
  const versions = statuses.map((status, i) => ({
    topic: 'order.shipment.tracking.updated',
    body: shipmentBody(7, i * 10, { status }),
  }));
  // Newest first, one version per chunk: every later chunk brings an older state.
  await insertInbox(sql, [...versions].reverse());
  await drainInbox(sql, { chunkSize: 1, budgetMs: 10_000 });
  const [first] = await sql`select status, event_time::text, event_inbox_id, updated_at::text from shipments where id = 7`;
  t.equal(first.status, 'Cancelled');
  // Shuffled in one chunk, as duplicates (webhook retries keep the body; these are new deliveries of old states).
  await insertInbox(sql, [versions[2], versions[4], versions[0], versions[4], versions[1]]);
  const r = await drainChunk(sql, 500);
  t.equal(r.processed, 5);
  const [after] = await sql`select status, event_time::text, event_inbox_id, updated_at::text from shipments where id = 7`;
  t.equal(after.status, 'Cancelled');
  t.equal(after.event_time, first.event_time);
  // A tie on event_time is broken by inbox id: the later copy of the newest state wins, with the same content.
  t.ok(Number(after.event_inbox_id) >= Number(first.event_inbox_id));
  // Replaying the same inbox rows (status back to pending) is harmless.
  await sql`update inbox_events set status = 'pending'`;
  const snapshot = await sql`select * from shipments`;
  await drainInbox(sql, { chunkSize: 500, budgetMs: 10_000 });
  t.same(await sql`select * from shipments`, snapshot, 'a replay changes no row');
});

t.test('a charge that arrives before its shipment is pending, then attributed by the chunk that brings it', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 2);
  await insertInbox(sql, [
    { sourceId: 'src-2', topic: 'billing.charge.created', body: chargeBody('T-early', 55, 1) },
    { sourceId: 'src-2', topic: 'billing.charge.created', body: chargeBody('T-storage', 0, 1, { reference_type: 'FC', reference_id: '12-404-Shelf' }) },
    { sourceId: 'src-2', topic: 'billing.charge.created', body: chargeBody('T-other', 0, 1, { reference_type: 'TicketNumber', reference_id: '123' }) },
  ]);
  await drainChunk(sql, 500);
  t.same(
    (await sql`select transaction_id, attribution_status, attribution_reason from transactions order by 1`).map((r) => ({ ...r })),
    [
      { transaction_id: 'T-early', attribution_status: 'pending', attribution_reason: 'shipment_not_yet_known' },
      { transaction_id: 'T-other', attribution_status: 'unattributable', attribution_reason: 'reference_type_not_attributable' },
      { transaction_id: 'T-storage', attribution_status: 'unattributable', attribution_reason: 'inventory_item_unknown' },
    ],
  );
  await insertInbox(sql, [{ sourceId: 'src-2', topic: 'order.shipment.exception', body: shipmentBody(55, 2) }]);
  const r = await drainChunk(sql, 500);
  t.equal(r.attributed, 1, 'caught up set-based in the shipment chunk');
  const [txn] = await sql`select client_id, attribution_status, attribution_reason from transactions where transaction_id = 'T-early'`;
  t.same({ ...txn }, { client_id: 'client-2', attribution_status: 'attributed', attribution_reason: null });
  // A later version of the charge (invoiced) keeps its attribution.
  await insertInbox(sql, [{ sourceId: 'src-2', topic: 'billing.charge.created', body: chargeBody('T-early', 55, 9, { invoice_id: 8000001, invoiced_status: true }) }]);
  await drainChunk(sql, 500);
  const [inv] = await sql`select invoice_id, client_id, attribution_status from transactions where transaction_id = 'T-early'`;
  t.same({ ...inv }, { invoice_id: '8000001', client_id: 'client-2', attribution_status: 'attributed' });
});

t.test('a charge whose reference type is spelled otherwise (case, spaces) is stored in the provider\'s spelling and caught up', async (t) => {
  // The landing catch-up finds pending charges through an index on the exact spelling; a charge stored as
  // ` shipment` would have stayed pending when its shipment landed later.
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  await insertInbox(sql, [
    { topic: 'billing.charge.created', body: chargeBody('T-lower', 61, 1, { reference_type: ' shipment' }) },
    { topic: 'billing.charge.created', body: chargeBody('T-upper', 62, 1, { reference_type: 'SHIPMENT' }) },
  ]);
  await drainChunk(sql, 500);
  await insertInbox(sql, [
    { topic: 'order.shipment.exception', body: shipmentBody(61, 2) },
    { topic: 'order.shipment.exception', body: shipmentBody(62, 2) },
  ]);
  const r = await drainChunk(sql, 500);
  t.equal(r.attributed, 2, 'both caught up by the chunk that brought their shipments');
  t.same(
    (await sql`select transaction_id, reference_type, attribution_status, client_id from transactions order by 1`).map((x) => ({ ...x })),
    [
      { transaction_id: 'T-lower', reference_type: 'Shipment', attribution_status: 'attributed', client_id: 'client-1' },
      { transaction_id: 'T-upper', reference_type: 'Shipment', attribution_status: 'attributed', client_id: 'client-1' },
    ],
  );
  const drift = await sql`select topic, field, problem, count::int from payload_drift where field = 'reference_type'`;
  t.same(drift.map((d) => ({ ...d })), [{ topic: 'billing.charge.created', field: 'reference_type', problem: 'unreadable', count: 2 }], 'counted as drift');
});

t.test('a poison event is dead with its reason while its 499 neighbours land', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  const events = mixedEvents(499);
  events.splice(250, 0, { topic: 'order.shipment.delivered', body: { status: 'Completed', event_time: at(1) } });
  await insertInbox(sql, events);
  const r = await drainChunk(sql, 500);
  t.match(r, { claimed: 500, processed: 499, dead: 1, transactions: 1 });
  const dead = await sql`select topic, last_error from inbox_events where status = 'dead'`;
  t.same(dead.map((d) => ({ ...d })), [{ topic: 'order.shipment.delivered', last_error: 'shipment id missing or invalid' }]);
  const [pending] = await sql`select count(*)::int as n from inbox_events where status = 'pending'`;
  t.equal(pending.n, 0);
});

t.test('a batch statement PostgreSQL rejects is isolated by bisection, not by a statement per event', async (t) => {
  let statements = 0;
  const { sql } = await freshDatabase(t, { onQuery: () => statements++ });
  await insertSources(sql, 1);
  const events = mixedEvents(200);
  // Valid JSON that JavaScript accepts and jsonb refuses (\u0000): only PostgreSQL can tell.
  events.splice(77, 0, { topic: 'order.shipment.on_hold', body: `{"id": 4242, "status": "OnHold\\u0000", "event_time": "${at(3)}"}` });
  await insertInbox(sql, events);
  statements = 0;
  const r = await drainChunk(sql, 500);
  t.match(r, { claimed: 201, processed: 200, dead: 1 });
  t.ok(r.transactions <= 2 * Math.ceil(Math.log2(201)) + 2, `${r.transactions} transactions for 201 events`);
  t.ok(statements < 201, `${statements} statements in all`);
  const [dead] = await sql`select body, last_error from inbox_events where status = 'dead'`;
  t.match(dead.last_error, /^apply failed: (invalid byte sequence|unsupported Unicode)/);
  const [s] = await sql`select count(*)::int as n from shipments where id = 4242`;
  t.equal(s.n, 0);
});

t.test('unknown topics are ignored (kept, counted) and no topic at all too', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertInbox(sql, [
    { topic: 'order.created', body: { id: 1 } },
    { topic: 'inventory.updated', body: { id: 2 } },
    { topic: null, body: { id: 3, type: 'order.shipment.delivered', event_time: at(1) } },
  ]);
  const r = await drainChunk(sql, 500);
  t.match(r, { ignored: 2, processed: 1 });
  t.same(
    (await sql`select status, last_error from inbox_events order by id`).map((x) => ({ ...x })),
    [
      { status: 'ignored', last_error: 'unknown topic order.created' },
      { status: 'ignored', last_error: 'unknown topic inventory.updated' },
      { status: 'processed', last_error: null },
    ],
  );
});

t.test("a shipment's client comes from its order's channel: the enclosing order, this chunk's order, the stored order, else the source", async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  await sql`insert into channel_clients (source_id, channel_id, client_id) values ('src-1', 42, 'client-mapped')`;
  const order = (id: number, s: number, channel: number, shipmentIds: number[]) => ({
    id,
    status: 'Processing',
    last_update_at: at(s),
    event_time: at(s),
    channel: { id: channel, name: `channel ${channel}` },
    shipments: shipmentIds.map((k) => shipmentBody(k, s, { order_id: id })),
  });
  // Chunk 1 stores order 7001 (channel 42) with shipment 1; order 7002 is on an unmapped channel.
  await insertInbox(sql, [
    { topic: 'order.shipped', body: order(7001, 1, 42, [1]) },
    { topic: 'order.shipped', body: order(7002, 1, 9, [2]) },
  ]);
  await drainChunk(sql, 500);
  // Chunk 2: shipment events without a channel. 3 belongs to the stored order 7001; 4 to order 7003, which arrives in
  // this same chunk (after it) on channel 42; 5 to order 7004, stored on channel 9 and moved to channel 42 by a newer
  // version in this chunk; 6 to an order nobody has seen.
  await insertInbox(sql, [
    { topic: 'order.shipment.tracking.updated', body: shipmentBody(3, 2, { order_id: 7001 }) },
    { topic: 'order.shipment.tracking.updated', body: shipmentBody(4, 2, { order_id: 7003 }) },
    { topic: 'order.shipment.tracking.updated', body: shipmentBody(6, 2, { order_id: 7999 }) },
    { topic: 'order.shipped', body: order(7003, 2, 42, []) },
  ]);
  await insertInbox(sql, [{ topic: 'order.shipped', body: order(7004, 1, 9, []) }]);
  await drainChunk(sql, 500);
  await insertInbox(sql, [
    { topic: 'order.shipment.tracking.updated', body: shipmentBody(5, 3, { order_id: 7004 }) },
    { topic: 'order.shipped', body: order(7004, 3, 42, []) },
  ]);
  await drainChunk(sql, 500);
  const rows = await sql<{ id: string; client_id: string }[]>`select id::text, client_id from shipments order by id`;
  t.same(
    rows.map((r) => [Number(r.id), r.client_id]),
    [
      [1, 'client-mapped'], // inside its order, channel 42
      [2, 'client-1'], // inside its order, channel 9 is not mapped: the source's client
      [3, 'client-mapped'], // the stored order's channel
      [4, 'client-mapped'], // this chunk's order, new
      [5, 'client-mapped'], // this chunk's order, newer than the stored one
      [6, 'client-1'], // order unknown: the source's client
    ],
  );
});

t.test('a poll event newer than the database is a poll catch; one a webhook already brought is not', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  const order = (id: number, s: number) => ({
    id,
    status: 'Processing',
    last_update_at: at(s),
    channel: { id: 1, name: 'c' },
    shipments: [shipmentBody(id - 100, s)],
  });
  await insertInbox(sql, [{ topic: 'order.shipped', body: { ...order(500, 1), event_time: at(1) } }]);
  await drainChunk(sql, 500);
  await insertInbox(sql, [
    { topic: 'poll.order', via: 'poll', body: order(500, 1) }, // the webhook brought it
    { topic: 'poll.order', via: 'poll', body: order(501, 2) }, // nobody did
    { topic: 'poll.transaction', via: 'poll', body: chargeBody('T9', 401, 3) },
  ]);
  const r = await drainChunk(sql, 500);
  t.same(r.pollCatches, { orders: 1, transactions: 1 });
  const cursors = await sql`select stream, catches::int from poll_cursors order by stream`;
  t.same(cursors.map((c) => ({ ...c })), [
    { stream: 'orders', catches: 1 },
    { stream: 'transactions', catches: 1 },
  ]);
});

t.test("two drains of two concurrent chunks each over overlapping entities finish without deadlock, each event applied once, newest wins", async (t) => {
  const a = await freshDatabase(t, { max: 2 });
  const { createDb } = await import('../../src/db/client.js');
  const b = createDb({ url: a.url, max: 2 });
  t.teardown(() => b.close(1));
  await insertSources(a.sql, 1);
  const events: InboxEventInput[] = [];
  // 40 shipments and 40 charges, each in 15 versions, interleaved so that every chunk touches most of them.
  for (let v = 0; v < 15; v++) {
    for (let k = 1; k <= 40; k++) {
      const s = (v * 7 + k * 13) % 15; // a version order that is not arrival order
      events.push({ topic: 'order.shipment.tracking.updated', body: shipmentBody(k, s, { status: `S${s}` }) });
      events.push({ topic: 'billing.charge.created', body: chargeBody(`T${k}`, k, s, { amount: s }) });
    }
  }
  await insertInbox(a.sql, events);
  const [ra, rb] = await Promise.all([
    drainInbox(a.sql, { chunkSize: 40, budgetMs: 60_000, concurrency: 2 }),
    drainInbox(b.sql, { chunkSize: 40, budgetMs: 60_000, concurrency: 2 }),
  ]);
  t.equal(ra.processed + rb.processed, events.length, `${ra.chunks} + ${rb.chunks} chunks`);
  t.ok(ra.processed > 0 && rb.processed > 0, 'both drains did work');
  const [inbox] = await a.sql`select count(*) filter (where status = 'processed')::int as processed, max(attempts)::int as attempts from inbox_events`;
  t.same({ ...inbox }, { processed: events.length, attempts: 1 });
  const ships = await a.sql`select distinct status from shipments`;
  t.same(ships.map((s) => s.status), ['S14']);
  const txns = await a.sql`select distinct amount::int, attribution_status from transactions`;
  t.same(txns.map((x) => ({ ...x })), [{ amount: 14, attribution_status: 'attributed' }]);
});

t.test("the simulator's own payloads, shuffled, land as the provider's truth", async (t) => {
  const { sql } = await freshDatabase(t);
  const world = createWorld({ seed: 3, clients: 2, ordersPerClient: 30 });
  await insertSources(sql, 2);
  const changes = [1, 2, 3, 4, 5, 6].flatMap(() => world.step({ newOrders: 10, updates: 60, billing: 15, durationMs: 60_000 }));
  const truth = world.truth();
  for (const item of truth.inventory) {
    await sql`insert into inventory_items (id, source_id, client_id) values (${item.id}, ${`src-${item.client_id}`}, ${`client-${item.client_id}`})`;
  }
  // Out of order: each event moves up to 40 places.
  const events = changes.map((c, i) => ({ c, key: i + ((i * 7919) % 41) - 20 })).sort((x, y) => x.key - y.key);
  await insertInbox(sql, events.map((e) => fromChange(e.c)));
  const r = await drainInbox(sql, { chunkSize: 97, budgetMs: 60_000 });
  t.match(r, { processed: changes.length, dead: 0, ignored: 0 });

  const announced = new Set<number>();
  for (const c of changes) {
    if ('shipments' in c.payload) for (const s of c.payload.shipments) announced.add(s.id);
    else if (c.topic.startsWith('order.shipment.')) announced.add((c.payload as { id: number }).id);
  }
  const stored = new Map((await sql`select id::int, status, tracking_number, delivery_date, delivered_at, client_id from shipments`).map((s) => [s.id, s]));
  let checked = 0;
  for (const s of truth.shipments.filter((x) => announced.has(x.id))) {
    const mine = stored.get(s.id);
    if (!mine || mine.status !== s.status || mine.tracking_number !== (s.tracking?.tracking_number ?? null) || (s.delivery_date === null) !== (mine.delivered_at === null) || mine.client_id !== `client-${s.client_id}`) {
      t.fail(`shipment ${s.id}: stored ${JSON.stringify(mine)} vs truth ${s.status}`);
      continue;
    }
    checked++;
  }
  t.equal(checked, announced.size, `${checked} shipments as the provider holds them`);

  const txns = new Map((await sql`select transaction_id, amount::float8 as amount, invoice_id, client_id, attribution_status from transactions`).map((x) => [x.transaction_id, x]));
  const billed = new Set(changes.filter((c) => c.topic.startsWith('billing.')).map((c) => (c.payload as { transaction_id: string }).transaction_id));
  let attributed = 0;
  for (const x of truth.transactions.filter((x) => billed.has(x.transaction_id))) {
    const mine = txns.get(x.transaction_id);
    const refKnown = x.reference_type !== 'Shipment' || stored.has(Number(x.reference_id));
    const want = x.client_id === null ? null : refKnown ? `client-${x.client_id}` : null;
    if (!mine || mine.amount !== x.amount || String(mine.invoice_id ?? null) !== String(x.invoice_id) || mine.client_id !== want) {
      t.fail(`transaction ${x.transaction_id}: ${JSON.stringify(mine)} vs ${JSON.stringify(x)}`);
    } else if (want) attributed++;
  }
  t.ok(attributed > 20, `${attributed} of ${billed.size} charges attributed as the truth says`);
});

t.test('stored documents are the resources as their inbox rows carried them (an order without its shipments)', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  const second = shipmentBody(12, 1, { status: 'Completed' });
  await insertInbox(sql, [
    { topic: 'order.shipped', body: { id: 900_001, status: 'Fulfilled', shipments: [shipmentBody(11, 1), second], event_time: at(1) } },
    { topic: 'order.shipment.exception', body: { data: { ...shipmentBody(13, 1), status: 'Exception' } } },
    { topic: 'return.created', body: { return: { id: 300_001, status: 'AwaitingArrival' }, event_time: at(1) } },
  ]);
  const r = await drainChunk(sql, 500);
  t.equal(r.processed, 3);
  const [order] = await sql`select data from orders where id = 900001`;
  t.same(order.data, { id: 900_001, status: 'Fulfilled', event_time: at(1) }, 'the order, without its shipments');
  const ships = await sql`select id::int, data from shipments order by id`;
  t.same(ships.map((s) => s.data), [shipmentBody(11, 1), second, { ...shipmentBody(13, 1), status: 'Exception' }]);
  const [ret] = await sql`select data from returns`;
  t.same(ret.data, { id: 300_001, status: 'AwaitingArrival' }, 'the resource under its key');
});

t.test('a charge stays attributable while a stale copy of it holds its row as its shipment lands', async (t) => {
  // A poll re-reads charge T (an older version: its upsert changes nothing, but ON CONFLICT DO UPDATE locks the row) in a
  // chunk that is still open when another chunk brings T's shipment; that chunk's catch-up skips the locked row (SKIP
  // LOCKED: "the holder re-checks it"). The holder must then re-check it: T was left pending for ever before.
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  await insertInbox(sql, [{ topic: 'billing.charge.created', body: chargeBody('T-stale', 77, 1) }]);
  await drainInbox(sql, { chunkSize: 500, budgetMs: 10_000 });
  const [before] = await sql`select attribution_status from transactions where transaction_id = 'T-stale'`;
  t.equal(before.attribution_status, 'pending', 'no shipment yet: pending');

  // An older version (a poll page read before the webhook's change): not newer, so the upsert writes nothing.
  const [staleId] = await insertInbox(sql, [{ topic: 'poll.transaction', via: 'poll', body: chargeBody('T-stale', 77, 0) }]);
  await insertInbox(sql, [{ topic: 'order.shipment.tracking.updated', body: shipmentBody(77, 2) }]);
  const held = latch();
  const applied = latch();
  const stale = sql.begin(async (tx) => {
    const rows = await claimInboxEventsById(tx, [staleId]);
    t.equal(rows.length, 1, 'the stale copy claimed');
    await applyChunk(tx, rows);
    applied.open();
    await held.opened;
  });
  await applied.opened;
  // The shipment's chunk, while the stale chunk holds T's row.
  const landing = drainChunk(sql, 500);
  const settledEarly = await Promise.race([landing.then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
  held.open();
  await stale;
  const r = await landing;
  t.equal(r.processed, 1, 'the shipment applied');
  const [after] = await sql`select attribution_status, client_id from transactions where transaction_id = 'T-stale'`;
  t.same({ ...after }, { attribution_status: 'attributed', client_id: 'client-1' }, 'T attributed once both committed');
  t.comment(settledEarly ? 'the landing chunk did not wait' : 'the landing chunk waited for the stale one');
});

t.test('a storage charge polled while an operator stores its inventory item is attributed, whichever commits first', async (t) => {
  // The chaos run's rare failure: a poll brought storage charges while the items were being stored, and they stayed
  // `inventory_item_unknown` for ever. The chunk could not see the items (not committed), and the operator's
  // attribution could not see the charges (not committed either). Both now take the source's inventory key.
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  const storage = (id: string, item: number) =>
    chargeBody(id, 0, 1, { reference_type: 'FC', reference_id: `12-${item}-Shelf`, transaction_fee: 'Storage' });
  const store = (item: number) =>
    storeInventoryItems(sql, { sourceId: 'src-1', apply: true, items: [{ id: item, clientId: 'client-1', name: null, sku: null }] });
  const attribution = async (id: string) =>
    ({ ...(await sql`select attribution_status, client_id from transactions where transaction_id = ${id}`)[0] });

  // 1. The operator commits between the chunk's upserts and its catch-up.
  const [first] = await insertInbox(sql, [{ topic: 'billing.charge.created', via: 'poll', body: storage('T-fc-1', 40001) }]);
  let stored: Awaited<ReturnType<typeof store>> | undefined;
  let gaps = 0;
  await sql.begin(async (tx) => {
    const rows = await claimInboxEventsById(tx, [first]);
    await applyChunk(tx, rows, {
      // Awaited before normalising, then after the upserts: the second time, the operator stores the item.
      giveWay: async () => {
        if (++gaps === 2) stored = await store(40001);
      },
    });
  });
  t.equal(stored?.attributed, 0, "the operator's attribution could not see the uncommitted charge");
  t.same(await attribution('T-fc-1'), { attribution_status: 'attributed', client_id: 'client-1' }, "the chunk's re-check did");

  // 2. The chunk holds the key (catch-up done, not committed) when the operator stores the item.
  const [second] = await insertInbox(sql, [{ topic: 'billing.charge.created', via: 'poll', body: storage('T-fc-2', 40002) }]);
  const commit = latch();
  const applied = latch();
  const chunk = sql.begin(async (tx) => {
    await applyChunk(tx, await claimInboxEventsById(tx, [second]));
    applied.open();
    await commit.opened;
  });
  await applied.opened;
  const storing = store(40002);
  const early = await Promise.race([storing.then(() => 'settled'), new Promise((r) => setTimeout(() => r('waiting'), 300))]);
  commit.open();
  await chunk;
  t.equal((await storing).attributed, 1, 'the operator, once the chunk committed, attributed the charge');
  t.same(await attribution('T-fc-2'), { attribution_status: 'attributed', client_id: 'client-1' });
  t.comment(`the operator's transaction was ${early} while the chunk held the key`);

  // Removing the item later keeps what it attributed, even when a newer version of the charge arrives.
  await sql`delete from inventory_items where id = 40002`;
  await insertInbox(sql, [{ topic: 'billing.charge.created', via: 'poll', body: { ...storage('T-fc-2', 40002), invoiced_status: true, event_time: at(5), last_update_at: at(5) } }]);
  await drainChunk(sql, 500);
  t.same(
    { ...(await sql`select attribution_status, attribution_reason, client_id, invoiced_status from transactions where transaction_id = 'T-fc-2'`)[0] },
    { attribution_status: 'attributed', attribution_reason: null, client_id: 'client-1', invoiced_status: true },
    'a known client is kept with its status',
  );
});
