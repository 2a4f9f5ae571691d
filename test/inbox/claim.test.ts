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

t.test('a claim shares a chunk between sources: a backfill of one source does not push the others out', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 3);
  const shipment = (sourceId: string, id: number, via: 'webhook' | 'poll') => ({
    sourceId,
    via,
    topic: 'order.shipment.tracking.updated',
    body: shipmentBody(id, id),
  });
  // src-1 backfills 1,200 polled events first; src-2 and src-3 then receive a few fresh webhooks.
  await insertInbox(sql, Array.from({ length: 1200 }, (_, i) => shipment('src-1', i + 1, 'poll')));
  await insertInbox(sql, Array.from({ length: 30 }, (_, i) => shipment('src-2', 10_000 + i, 'webhook')));
  await insertInbox(sql, Array.from({ length: 300 }, (_, i) => shipment('src-3', 20_000 + i, 'webhook')));

  const first = await sql.begin((tx) => claimInboxChunk(tx, 500, Number.MAX_SAFE_INTEGER));
  const bySource = (rows: { sourceId: string }[]) => {
    const n: Record<string, number> = {};
    for (const r of rows) n[r.sourceId] = (n[r.sourceId] ?? 0) + 1;
    return n;
  };
  t.equal(first.rows.length, 500, 'the chunk is full');
  const n = bySource(first.rows);
  t.equal(n['src-2'], 30, 'every one of src-2 webhooks is in the first chunk, behind 1,200 older polled events');
  t.ok(n['src-3'] >= 167, `src-3 has at least its share of 167 (${n['src-3']})`);
  t.ok(n['src-1'] >= 167, `the backfill keeps its share and the slots src-2 left (${n['src-1']})`);
  t.same(
    first.rows.map((r) => r.id),
    [...first.rows.map((r) => r.id)].sort((a, b) => a - b),
    'rows come back in id order',
  );
  const oldest = first.rows.filter((r) => r.sourceId === 'src-1').map((r) => r.id);
  const [{ min }] = await sql`select min(id)::int as min from inbox_events where source_id = 'src-1'`;
  t.equal(oldest[0], min, 'each source gives its oldest rows');

  // Concurrent claims take disjoint rows, and a second claim still shares fairly among what is left.
  await sql.begin(async (a) => {
    const one = await claimInboxChunk(a, 500);
    await sql.begin(async (b) => {
      const two = await claimInboxChunk(b, 500);
      const ids = new Set(one.rows.map((r) => r.id));
      t.equal(two.rows.filter((r) => ids.has(r.id)).length, 0, 'disjoint under SKIP LOCKED');
      t.equal(one.rows.length + two.rows.length, 1000, 'two full chunks');
    });
  });

  const r = await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  t.equal(r.processed, 1530, 'the drain still applies every event once');
});
