import t from 'tap';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { insertSource } from '../../src/intake/sources.js';
import { explainEntity } from '../../src/ops/explain.js';
import { chargeBody, shipmentBody } from '../apply/factory.js';
import { freshDatabase, testKeys } from '../helper.js';
import { runOpsCli } from './run-ops.js';

// `ops explain`: every inbox event held for one entity, which one the stored row reflects, and the row.

t.test('explain --shipment lists its events oldest first and marks the one the row reflects', async (t) => {
  const db = await freshDatabase(t);
  const { sql } = db;
  const sourceId = await insertSource(sql, testKeys, { name: 'acme', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
  const event = (eventId: string, topic: string, body: unknown, via = 'webhook') =>
    sql`insert into inbox_events (source_id, event_id, topic, body, via) values (${sourceId}, ${eventId}, ${topic}, ${JSON.stringify(body)}, ${via})`;
  // The newest version (t=50) arrives first; an older webhook (t=10) and a poll (t=30) arrive after it.
  await event('w-new', 'order.shipment.delivered', shipmentBody(777, 50, { status: 'Completed' }));
  await event('w-old', 'order.shipment.updated', shipmentBody(777, 10, { status: 'Processing' }));
  await event('p-mid', 'poll.order', { id: 1_000_777, last_update_at: '2026-02-01T00:00:30Z', shipments: [shipmentBody(777, 30)] }, 'poll');
  // Unreadable (no shipment id), naming the shipment only in its text, with an escape sequence in its topic.
  await event('w-bad', 'order.shipment.delivered\u001b[2J', { note: 'about shipment', order_number: '777', event_time: '2026-02-01T00:01:00Z' });
  await event('other', 'order.shipment.delivered', shipmentBody(7770, 5)); // another id containing "777"
  await event('charge', 'billing.charge.created', chargeBody('tx-777-a', 777, 60));
  await drainInbox(sql, { chunkSize: 500, budgetMs: 10_000 });

  const e = await explainEntity(sql, { kind: 'shipment', id: '777' });
  t.equal(e.row?.status, 'Completed', 'the stored row holds the newest version');
  const ids = async (eventId: string) => Number((await sql`select id from inbox_events where event_id = ${eventId}`)[0].id);
  t.equal(e.reflects?.inboxId, await ids('w-new'), 'which is the first-received webhook');
  t.same(
    e.events.map((x) => [x.status, x.via, x.reflected]),
    [
      ['processed', 'webhook', true],
      ['processed', 'webhook', false],
      ['processed', 'poll', false],
      ['dead', 'webhook', false],
    ],
    'its four events, oldest first; not the other shipment nor the charge that merely references it',
  );
  t.ok(e.events[0].version! > e.events[1].version!, 'the reflected event carries the newest version');
  t.ok(e.events[3].error, 'the dead one says why');

  // Found through the keys the drain's mark stored (an index), not by reading every body.
  const keysOf = async (eventId: string) =>
    (await sql<{ k: string[] | null }[]>`select entity_keys as k from inbox_events where event_id = ${eventId}`)[0].k;
  t.ok((await keysOf('p-mid'))?.includes('shipment:777'), 'the poll of the order carries the shipment it holds as a key');
  t.ok((await keysOf('w-bad'))?.includes('token:777'), "the unreadable body carries its id-like tokens");
  t.notOk((await keysOf('other'))?.includes('shipment:777'), 'the other shipment does not carry this key');
  // A pending event (not drained yet, no keys) is found by its text.
  await event('late', 'order.shipment.updated', shipmentBody(777, 70, { status: 'Completed' }));
  const withPending = await explainEntity(sql, { kind: 'shipment', id: '0777' });
  t.equal(withPending.id, '777', 'a numeric id is read as a number (leading zeros dropped)');
  t.same(
    withPending.events.map((x) => x.status),
    ['processed', 'processed', 'processed', 'dead', 'pending'],
    'the pending event is listed after the drained ones',
  );
  await t.rejects(explainEntity(sql, { kind: 'order', id: 'abc' }), { code: 'USAGE' }, 'a non-numeric order id is a usage error, before any query');
  await t.rejects(explainEntity(sql, { kind: 'shipment', id: '12; drop table shipments' }), { code: 'USAGE' });

  const cli = await runOpsCli(db.url, ['explain', '--shipment', '777']);
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.stdout, /shipment 777: stored, version .* from inbox event \d+/);
  t.match(cli.stdout, /^=>\s+\d+/m, 'the reflected event is marked');
  t.notOk(cli.stdout.includes(String.fromCharCode(27)), 'no escape sequence reaches the terminal');
  const j = await runOpsCli(db.url, ['explain', '--transaction', 'tx-777-a', '--json']);
  t.equal(j.code, 0, j.stderr);
  const tx = JSON.parse(j.stdout);
  t.equal(tx.row.transaction_id, 'tx-777-a');
  t.equal(tx.events.length, 1, 'the charge has its one event');

  const none = await runOpsCli(db.url, ['explain', '--order', '424242']);
  t.equal(none.code, 0);
  t.match(none.stdout, /order 424242: no stored row/);
  const bad = await runOpsCli(db.url, ['explain', '--order', 'abc']);
  t.equal(bad.code, 2, 'a malformed id is a usage error');
  t.match(bad.stderr, /must be a positive integer/, 'which says what is wrong');
  t.notMatch(bad.stderr, /at .*\.ts:\d+/, 'not a stack trace');
  const two = await runOpsCli(db.url, ['explain', '--order', '1', '--shipment', '2']);
  t.equal(two.code, 2, 'exactly one entity');
});
