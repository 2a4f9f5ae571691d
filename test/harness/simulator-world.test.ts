import t from 'tap';
import { TimelineLogTypes } from '../../src/provider/shapes.js';
import { type ChangeEvent, createWorld } from './simulator/index.js';

// The simulated world on its own: reproducibility, lifecycle, change events, and the truth it reports.

const EVENT_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/;

t.test('the same seed builds the same world and a different seed another', async (t) => {
  const options = { clients: 2, ordersPerClient: 40 };
  const a = createWorld({ ...options, seed: 5 });
  const b = createWorld({ ...options, seed: 5 });
  t.same(a.truth(), b.truth());
  t.same(a.step(), b.step());
  t.not(JSON.stringify(createWorld({ ...options, seed: 6 }).truth()), JSON.stringify(a.truth()));
  t.match(a.clients[0], { token: /^pat_\w{40}$/ });
  t.equal(Buffer.from(a.clients[0].secret.slice('whsec_'.length), 'base64').length, 24);
});

// About 1.5 s on a laptop (reported, not asserted: speed belongs to benchmarks).
t.test('builds a world of 50,000 shipments', async (t) => {
  const started = performance.now();
  const world = createWorld({ clients: 10, ordersPerClient: 3800 });
  const ms = performance.now() - started;
  const size = world.size();
  t.ok(size.shipments >= 50_000, `${size.shipments} shipments, ${size.transactions} transactions`);
  t.comment(`built in ${Math.round(ms)} ms`);
});

t.test('the history holds every stage of the lifecycle, consistently', async (t) => {
  const world = createWorld({ seed: 2, clients: 3, ordersPerClient: 200 });
  const truth = world.truth();
  const statuses = new Set<string>(truth.shipments.map((s) => s.status));
  for (const status of ['Processing', 'LabeledCreated', 'Completed', 'Cancelled']) t.ok(statuses.has(status), status);
  t.ok(
    truth.shipments.some((s) => s.delivery_date !== null),
    'some delivered',
  );
  t.ok(truth.returns.length > 0, 'some returned');

  const shipments = new Map(truth.shipments.map((s) => [s.id, s]));
  for (const order of truth.orders) {
    const own = order.shipment_ids.map((id) => shipments.get(id)?.last_update_at ?? '');
    t.equal(order.last_update_at, [order.created_date, ...own].sort().at(-1), 'order last_update_at is the max');
  }
  const allowed = new Set<number>(Object.values(TimelineLogTypes));
  for (const s of truth.shipments) {
    const timeline = world.timeline(s.client_id, s.id) ?? [];
    if (!timeline.every((e) => allowed.has(e.log_type_id))) t.fail(`unknown log type on ${s.id}`);
    const delivered = timeline.at(-1)?.log_type_id === TimelineLogTypes.delivered;
    if (delivered !== (s.delivery_date !== null)) t.fail(`delivery and timeline disagree on ${s.id}`);
    if (s.status === 'Processing' && (s.tracking !== null || timeline.length > 1)) t.fail(`${s.id} is not processing`);
  }
  t.ok(truth.transactions.some((x) => x.invoiced_status === true));
  t.ok(truth.transactions.some((x) => x.invoiced_status === false));
});

t.test('attributes each transaction through what it references', async (t) => {
  const world = createWorld({ seed: 4, clients: 3, ordersPerClient: 100 });
  for (let i = 0; i < 20; i++) world.step({ newOrders: 5, updates: 20, billing: 20 });
  const truth = world.truth();
  const shipmentClient = new Map(truth.shipments.map((s) => [String(s.id), s.client_id]));
  const returnClient = new Map(truth.returns.map((r) => [String(r.id), r.client_id]));
  const inventoryClient = new Map(truth.inventory.map((item) => [String(item.id), item.client_id]));

  const kinds = new Set(truth.transactions.map((x) => x.reference_type));
  t.same([...kinds].sort(), ['Default', 'FC', 'Return', 'Shipment', 'Ticket Number', 'WRO']);
  for (const x of truth.transactions) {
    const expected =
      x.reference_type === 'Shipment'
        ? shipmentClient.get(x.reference_id)
        : x.reference_type === 'Return'
          ? returnClient.get(x.reference_id)
          : x.reference_type === 'FC'
            ? inventoryClient.get(x.reference_id.split('-')[1])
            : null;
    if (x.client_id !== expected) t.fail(`${x.transaction_id} (${x.reference_type}) attributed to ${x.client_id}`);
    if (x.client_id === null) t.equal(x.unattributed_reason, 'reference_type_not_attributable');
    else if (x.client_id !== x.source_client_id) t.fail(`${x.transaction_id} served by another account`);
  }
  const perShipment = new Map<string, number>();
  for (const x of truth.transactions) {
    if (x.reference_type === 'Shipment' && x.transaction_type === 'Charge') {
      perShipment.set(x.reference_id, (perShipment.get(x.reference_id) ?? 0) + 1);
    }
  }
  t.ok(Math.max(...perShipment.values()) > 1, 'several fees per shipment');
  t.ok(Math.max(...perShipment.values()) <= 4);
});

t.test('a step announces each change with the resource as it is then', async (t) => {
  const world = createWorld({ seed: 8, clients: 2, ordersPerClient: 100 });
  const before = world.now();
  const events = world.step({ newOrders: 10, updates: 60, billing: 30, durationMs: 5000 });
  t.equal(world.now(), before + 5000);

  const topics = new Set<string>(events.map((e) => e.topic));
  for (const topic of ['order.shipped', 'order.shipment.tracking.updated', 'billing.charge.created']) {
    t.ok(topics.has(topic), topic);
  }
  let last = '';
  for (const e of events) {
    t.match(e.payload.event_time, EVENT_TIME);
    t.ok(e.payload.event_time >= last, 'in the order they happened');
    last = e.payload.event_time;
    t.ok(Date.parse(e.payload.event_time) > before && Date.parse(e.payload.event_time) <= before + 5000);
    const stamp = e.payload.event_time.replace(/0000Z$/, 'Z');
    if ('last_update_at' in e.payload) t.equal(e.payload.last_update_at, stamp, `${e.topic} last_update_at`);
    if (e.topic === 'order.shipped') t.ok(e.payload.shipments.length > 0);
  }

  // Payloads are snapshots: later changes do not reach into events already produced.
  const shipped = events.find(
    (e): e is Extract<ChangeEvent, { topic: 'order.shipped' }> => e.topic === 'order.shipped',
  );
  const frozen = JSON.stringify(shipped);
  for (let i = 0; i < 30; i++) world.step({ updates: 50 });
  t.equal(JSON.stringify(shipped), frozen);
});

t.test('shipments move forward, get delivered, and transactions get invoiced later', async (t) => {
  const world = createWorld({ seed: 9, clients: 2, ordersPerClient: 30 });
  const events: ChangeEvent[] = [];
  for (let i = 0; i < 200; i++) events.push(...world.step({ newOrders: 1, updates: 6, billing: 3 }));

  const rank: Record<string, number> = { Processing: 0, OnHold: 0, Exception: 0, LabeledCreated: 1, Completed: 2 };
  const seen = new Map<number, string>();
  for (const e of events) {
    if (!e.topic.startsWith('order.shipment.')) continue;
    const s = e.payload as { id: number; status: string };
    const previous = seen.get(s.id);
    if (previous === 'Cancelled' || (previous && rank[s.status] < rank[previous])) t.fail(`${s.id} went back`);
    seen.set(s.id, s.status);
  }
  const delivered = events.filter((e) => e.topic === 'order.shipment.delivered');
  t.ok(delivered.length > 0);
  t.ok(delivered.every((e) => 'delivery_date' in e.payload && e.payload.delivery_date !== null));

  const versions = new Map<string, string[]>();
  for (const e of events) {
    if (!e.topic.startsWith('billing.')) continue;
    const x = e.payload as unknown as { transaction_id: string; invoiced_status: boolean };
    versions.set(x.transaction_id, [...(versions.get(x.transaction_id) ?? []), String(x.invoiced_status)]);
  }
  const invoicedLater = [...versions.values()].filter((v) => v.join() === 'false,true');
  t.ok(invoicedLater.length > 0, 'a transaction announced twice: created, then invoiced');
  t.ok(events.some((e) => e.topic === 'billing.refund.created'));
  t.ok(events.some((e) => e.topic === 'billing.credit.created'));
  t.ok(events.some((e) => e.topic.startsWith('return.')));
});

t.test('refuses an invalid start', async (t) => {
  t.throws(() => createWorld({ start: 'not a date' }), /invalid start/);
});

t.test('a 2026-01 world announces only the topics of the 2026-01 enum; the same changes happen', async (t) => {
  const { SubscribableTopics } = await import('../../src/provider/shapes.js');
  const newer = createWorld({ seed: 9, clients: 1, ordersPerClient: 20 });
  const dated = createWorld({ seed: 9, clients: 1, ordersPerClient: 20, webhookVersion: '2026-01' });
  const a = [1, 2, 3].flatMap(() => newer.step({ newOrders: 5, updates: 60, billing: 5, durationMs: 60_000 }));
  const b = [1, 2, 3].flatMap(() => dated.step({ newOrders: 5, updates: 60, billing: 5, durationMs: 60_000 }));
  t.ok(a.some((e) => !(SubscribableTopics as readonly string[]).includes(e.topic)), 'the 2026-07 world uses newer topics');
  t.same(b.filter((e) => !(SubscribableTopics as readonly string[]).includes(e.topic)), [], 'the 2026-01 world never does');
  t.same(dated.truth(), newer.truth(), 'the world itself is the same');
});
