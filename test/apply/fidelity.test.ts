import t from 'tap';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { readStatus } from '../../src/ops/status.js';
import { freshDatabase } from '../helper.js';
import { at, chargeBody, insertInbox, insertSources, shipmentBody } from './factory.js';

// Field fidelity (each field stored with the type the OpenAPI gives) and drift (what the normaliser does not know or
// cannot read, counted per topic and field, shown by ops status), through the real drain.

t.test('invoiced_status is stored as a boolean; date-only dates are kept; legacy strings still read, counted as drift', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  await insertInbox(sql, [
    { topic: 'billing.charge.created', body: chargeBody('T-bool', 1, 1, { invoiced_status: true, invoice_date: '2026-02-03', charge_date: '2026-02-01' }) },
    { topic: 'billing.charge.created', body: chargeBody('T-false', 1, 2, { invoiced_status: false }) },
    { topic: 'billing.charge.created', body: chargeBody('T-legacy', 1, 3, { invoiced_status: 'Invoiced', surprise: 1 }) },
  ]);
  const r = await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  t.match(r, { processed: 3, dead: 0 });
  const rows = await sql`
    select transaction_id, invoiced_status, pg_typeof(invoiced_status)::text as type, invoice_date, charge_date
      from transactions order by transaction_id`;
  t.same(
    rows.map((x) => [x.transaction_id, x.invoiced_status, x.type]),
    [
      ['T-bool', true, 'boolean'],
      ['T-false', false, 'boolean'],
      ['T-legacy', true, 'boolean'],
    ],
  );
  t.equal(rows[0].invoice_date.toISOString(), '2026-02-03T00:00:00.000Z', 'a date-only invoice_date is kept (midnight UTC)');
  t.equal(rows[0].charge_date.toISOString(), '2026-02-01T00:00:00.000Z');

  const status = await readStatus(sql, { staleAfterMs: 60_000 });
  t.same(
    status.drift.map((d) => [d.topic, d.field, d.problem, d.count]).sort(),
    [
      ['billing.charge.created', 'invoiced_status', 'unreadable', 1],
      ['billing.charge.created', 'surprise', 'unknown', 1],
    ],
    'drift per topic and field, the day it happens',
  );
  // The same drift again adds to the counts.
  await insertInbox(sql, [{ topic: 'billing.charge.created', body: chargeBody('T-legacy2', 1, 4, { invoiced_status: 'NotInvoiced' }) }]);
  await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  const again = await sql`select count::int from payload_drift where field = 'invoiced_status'`;
  t.equal(again[0].count, 2);
});

t.test('unknown fields of an order and its shipments, and an unreadable date, are drift; the rest applies', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  const order = {
    id: 900_001,
    status: 'Processing',
    channel: { id: 1, name: 'c' },
    shipments: [shipmentBody(1, 1, { new_thing: 'x', created_date: 'yesterday', tracking: { carrier: 'UPS', tracking_id: 'Z1', foo: 1 } })],
    event_time: at(1),
  };
  await insertInbox(sql, [{ topic: 'order.shipped', body: order }]);
  const r = await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  t.match(r, { processed: 1, dead: 0 });
  const drift = await sql`select topic, field, problem from payload_drift order by field`;
  t.same(
    drift.map((d) => `${d.field}:${d.problem}`),
    ['shipments[].created_date:unreadable', 'shipments[].new_thing:unknown', 'shipments[].tracking.foo:unknown'],
  );
  const [s] = await sql`select tracking_number, created_date from shipments`;
  t.same({ ...s }, { tracking_number: 'Z1', created_date: null }, 'tracking_id read as the tracking number');
});

t.test('a return never moves back to an earlier status, whatever order its deliveries arrive in', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  // OA's return has no update time; two deliveries out of order, the older status with the later event time.
  const ret = (status: string, s: number) => ({ id: 300_001, original_shipment_id: 1, status, insert_date: at(0), event_time: at(s) });
  await insertInbox(sql, [{ topic: 'return.updated', body: ret('Processing', 5) }]);
  await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  await insertInbox(sql, [{ topic: 'return.updated', body: ret('Arrived', 9) }]);
  await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  const [a] = await sql`select status from returns`;
  t.equal(a.status, 'Processing', 'a later delivery of an earlier status does not win');
  // In one chunk too.
  await insertInbox(sql, [
    { topic: 'return.completed', body: ret('Completed', 20) },
    { topic: 'return.updated', body: ret('Awaiting Arrival', 30) },
  ]);
  await drainInbox(sql, { chunkSize: 50, budgetMs: 30_000 });
  const [b] = await sql`select status from returns`;
  t.equal(b.status, 'Completed');
});

t.test("the simulator's payloads, which follow the OpenAPI, carry no drift", async (t) => {
  const { createWorld } = await import('../harness/simulator/index.js');
  const { normaliseEvent } = await import('../../src/apply/normalise.js');
  const world = createWorld({ seed: 12, clients: 2, ordersPerClient: 20 });
  const changes = [1, 2, 3].flatMap(() => world.step({ newOrders: 10, updates: 60, billing: 30, durationMs: 60_000 }));
  const drift = new Set<string>();
  let id = 1;
  for (const c of changes) {
    const n = normaliseEvent({ id: id++, sourceId: 's', topic: c.topic, body: JSON.stringify(c.payload), eventTime: null, receivedAt: '2026-02-01 00:00:00+00', via: 'webhook' });
    if (n.outcome !== 'apply') t.fail(`${c.topic}: ${n.outcome}`);
    else for (const d of n.entities.drift) drift.add(`${d.topic} ${d.field} ${d.problem}`);
  }
  t.same([...drift], []);
});
