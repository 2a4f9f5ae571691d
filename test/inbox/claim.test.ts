import t from 'tap';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { claimInboxChunk } from '../../src/inbox/claim.js';
import { insertInbox, insertSources, shipmentBody } from '../apply/factory.js';
import { freshDatabase } from '../helper.js';

// A chunk is bounded by its body bytes as well as its count, without loading the bodies past the bound.

/** A shipment event whose body is about `kb` kilobytes (padding in a field the normaliser keeps in `data`). */
const bigShipment = (id: number, kb: number) => ({
  topic: 'order.shipment.tracking.updated',
  body: shipmentBody(id, id, { padding: 'x'.repeat(kb * 1024) }),
});

t.test('a claim stops at the byte bound, an event larger than the bound comes alone, and the rest stays pending', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  await insertInbox(sql, [bigShipment(1, 100), bigShipment(2, 100), bigShipment(3, 100), bigShipment(4, 300), bigShipment(5, 10)]);

  const first = await sql.begin((tx) => claimInboxChunk(tx, 500, 250 * 1024));
  t.same(first.rows.map((r) => Number(JSON.parse(r.body).id)), [1, 2], 'two bodies of 100 KB fit in 250 KB, a third does not');
  t.equal(first.cutByBytes, true, 'and the claim says the bound, not the inbox, ended it');

  await sql`update inbox_events set status = 'processed' where id in (select id from inbox_events order by id limit 3)`;
  const alone = await sql.begin((tx) => claimInboxChunk(tx, 500, 250 * 1024));
  t.same(alone.rows.map((r) => Number(JSON.parse(r.body).id)), [4], 'an event of 300 KB, over the bound, is claimed alone');
  t.equal(alone.cutByBytes, true);

  await sql`update inbox_events set status = 'processed' where status = 'pending' and id = (select min(id) from inbox_events where status = 'pending')`;
  const last = await sql.begin((tx) => claimInboxChunk(tx, 500, 250 * 1024));
  t.equal(last.rows.length, 1);
  t.equal(last.cutByBytes, false, 'the inbox ran out: not a cut');
});

t.test('the drain goes on past chunks cut by bytes until the inbox is empty, and applies every event once', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  await insertInbox(sql, Array.from({ length: 12 }, (_, i) => bigShipment(i + 1, 64)));
  const r = await drainInbox(sql, { chunkSize: 500, chunkMaxBytes: 200 * 1024, budgetMs: 60_000 });
  t.equal(r.emptied, true, 'emptied');
  t.equal(r.processed, 12);
  t.ok(r.chunks >= 4, `bounded chunks: ${r.chunks} chunks of at most 3 events for 12`);
  const [{ n }] = await sql`select count(*)::int as n from shipments`;
  t.equal(n, 12);
});
