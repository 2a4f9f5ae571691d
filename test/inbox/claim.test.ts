import t from 'tap';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { startExpressLane } from '../../src/drain/express-lane.js';
import { claimInboxChunk } from '../../src/inbox/claim.js';
import { insertInbox, insertSources, shipmentBody } from '../apply/factory.js';
import { createDb } from '../../src/db/client.js';
import { freshDatabase } from '../helper.js';
import { type Captured, explainCaptured, inRollback } from '../plans/plan.js';

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

/** A tracking update of shipment `id` for `sourceId`, delivered by webhook or found by polling. */
const shipment = (sourceId: string, id: number, via: 'webhook' | 'poll', t = id) => ({
  sourceId,
  via,
  topic: 'order.shipment.tracking.updated',
  body: shipmentBody(id, t),
});

t.test('a claim shares a chunk between sources: a backfill of one source does not push the others out', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 3);
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

t.test('lanes: express takes the light sources only, bulk the backlogged ones, and neither waits for the other', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 3);
  const sources = (rows: { sourceId: string }[]) => [...new Set(rows.map((r) => r.sourceId))].sort();
  // src-2 has 30 webhooks pending: no source is backlogged, so bulk finds nothing (they are the express lane's) and
  // without lanes (perSource 0) every source is bulk's.
  await insertInbox(sql, Array.from({ length: 30 }, (_, i) => shipment('src-2', 10_000 + i, 'webhook')));
  const calm = await sql.begin((tx) => claimInboxChunk(tx, 500, Number.MAX_SAFE_INTEGER, { lane: 'bulk', perSource: 50 }));
  t.equal(calm.rows.length, 0, 'no backlog: bulk takes none of the light rows');
  const noLanes = await sql.begin((tx) => claimInboxChunk(tx, 500, Number.MAX_SAFE_INTEGER, { lane: 'bulk', perSource: 0 }));
  t.same([noLanes.rows.length, sources(noLanes.rows)], [30, ['src-2']], 'no lanes: bulk takes them all');
  // Then src-1 backfills 1,200 polled events and src-3 receives 50 webhooks.
  await insertInbox(sql, Array.from({ length: 1200 }, (_, i) => shipment('src-1', i + 1, 'poll')));
  await insertInbox(sql, Array.from({ length: 50 }, (_, i) => shipment('src-3', 20_000 + i, 'webhook')));

  await sql.begin(async (bulkTx) => {
    const bulk = await claimInboxChunk(bulkTx, 500, Number.MAX_SAFE_INTEGER, { lane: 'bulk', perSource: 50 });
    t.equal(bulk.rows.length, 500, 'bulk: a full chunk');
    t.same(sources(bulk.rows), ['src-1'], 'of the backlogged source only (src-2 is older but light; src-3, at the bound of 50, too)');
    // While the bulk chunk holds its rows, an express claim goes through at once and takes every light row.
    await sql.begin(async (expressTx) => {
      await expressTx`set local lock_timeout = '1s'`;
      const express = await claimInboxChunk(expressTx, 500, Number.MAX_SAFE_INTEGER, { lane: 'express', perSource: 50 });
      t.equal(express.rows.length, 80, 'express: all 80 fresh webhooks');
      t.same(sources(express.rows), ['src-2', 'src-3'], 'and none of the backlog');
      t.equal(express.cutByBytes, false);
    });
  });

  // With one more webhook src-3 is past the bound: backlogged, so bulk serves it beside src-1, sharing the chunk.
  await insertInbox(sql, [shipment('src-3', 30_000, 'webhook')]);
  const shared = await sql.begin((tx) => claimInboxChunk(tx, 500, Number.MAX_SAFE_INTEGER, { lane: 'bulk', perSource: 50 }));
  t.equal(shared.rows.filter((r) => r.sourceId === 'src-3').length, 51, 'src-3: all 51 (under its share of 250)');
  t.equal(shared.rows.filter((r) => r.sourceId === 'src-1').length, 449, 'src-1: the rest of the chunk');
  const express = await sql.begin((tx) => claimInboxChunk(tx, 500, Number.MAX_SAFE_INTEGER, { lane: 'express', perSource: 50 }));
  t.same(sources(express.rows), ['src-2'], 'express now serves src-2 alone');
});

for (const where of ['in its own thread', 'in the drain\'s event loop'] as const) {
t.test(`the drain in lanes (the express loop ${where}) applies every event once, and the fresh webhooks never ride with the backlog`, async (t) => {
  const { sql, url } = await freshDatabase(t);
  const expressLane = where === 'in its own thread' ? startExpressLane({ url }) : undefined;
  t.teardown(() => expressLane?.close());
  await insertSources(sql, 2);
  await insertInbox(
    sql,
    Array.from({ length: 3000 }, (_, i) => shipment('src-1', i + 1, 'poll')),
  );
  await insertInbox(
    sql,
    Array.from({ length: 20 }, (_, i) => shipment('src-2', 50_000 + i, 'webhook', 1)),
  );
  const mixed: number[] = [];
  let webhookChunks = 0;
  const r = await drainInbox(sql, {
    chunkSize: 500,
    budgetMs: 60_000,
    concurrency: 2,
    expressPerSource: 50,
    expressLane,
    onChunk(c) {
      const webhooks = c.applied.reduce((n, a) => n + a.receivedAt.length, 0);
      if (webhooks > 0) webhookChunks++;
      if (webhooks > 0 && c.claimed > webhooks) mixed.push(c.claimed);
    },
  });
  t.equal(r.emptied, true, 'emptied');
  t.equal(r.processed, 3020, 'every event once');
  t.ok(webhookChunks >= 1, 'the webhooks were applied');
  t.same(mixed, [], 'no chunk carried a webhook together with backlog rows');
  const [{ n }] = await sql`select count(*)::int as n from inbox_events where status <> 'processed'`;
  t.equal(n, 0);
  // The next drain (the worker's next job) on the same lane: the thread is kept between drains.
  await insertInbox(sql, Array.from({ length: 10 }, (_, i) => shipment('src-2', 60_000 + i, 'webhook', 2)));
  const again = await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000, concurrency: 2, expressPerSource: 50, expressLane });
  t.same([again.processed, again.emptied], [10, true], 'a second drain applies the new webhooks');
});
}

t.test('a failure in the express thread fails the drain, and nothing it held is lost', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 2);
  await insertInbox(sql, Array.from({ length: 600 }, (_, i) => shipment('src-1', i + 1, 'poll')));
  await insertInbox(sql, Array.from({ length: 5 }, (_, i) => shipment('src-2', 50_000 + i, 'webhook')));
  // The thread's connection goes to a port nothing listens on.
  const expressLane = startExpressLane({ url: 'postgres://wharf@127.0.0.1:1/none' });
  t.teardown(() => expressLane.close());
  await t.rejects(
    drainInbox(sql, { chunkSize: 500, budgetMs: 60_000, concurrency: 1, expressPerSource: 50, expressLane }),
    { code: 'ECONNREFUSED' },
    'the express lane\'s error is the drain\'s',
  );
  const [{ n }] = await sql`select count(*)::int as n from inbox_events where source_id = 'src-2' and status = 'pending'`;
  t.equal(n, 5, 'the light source\'s events are still pending, for the next drain');
});

t.test('the claim reads by source through its index even when the statistics saw no pending row', async (t) => {
  const { sql, url } = await freshDatabase(t);
  await insertSources(sql, 2);
  // Autovacuum analyzes a drained inbox: every row processed, so every pending scan is estimated at one row.
  await insertInbox(sql, Array.from({ length: 3000 }, (_, i) => shipment('src-1', i + 1, 'poll')));
  await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });
  await sql`analyze inbox_events`;
  // Then a backfill lands: 6,000 rows of src-1 behind 20 webhooks of src-2.
  await insertInbox(sql, Array.from({ length: 20 }, (_, i) => shipment('src-2', 50_000 + i, 'webhook')));
  await insertInbox(sql, Array.from({ length: 6000 }, (_, i) => shipment('src-1', 10_000 + i, 'poll')));
  const captured: Captured[] = [];
  const capturing = createDb({ url, max: 1, onQuery: (text, params) => captured.push({ text, params }) });
  t.teardown(() => capturing.close(1));
  for (const lane of ['bulk', 'express'] as const) {
    captured.length = 0;
    const claimed = await inRollback(capturing.sql, (tx) => claimInboxChunk(tx, 500, Number.MAX_SAFE_INTEGER, { lane, perSource: 50 }));
    t.equal(claimed.rows.length, lane === 'bulk' ? 500 : 20, `${lane}: the chunk`);
    const claim = captured.find((c) => c.text.includes('skip locked'))!;
    const plan = await explainCaptured(sql, claim, ['inbox_events']);
    t.ok(plan.indexes.includes('inbox_events_pending_by_source_idx'), `${lane}: per source through the index:\n${plan.outline}`);
    // The sorts left are of the claimed rows (their turns, their order): never of a source's pending rows.
    for (const s of plan.sorts) t.ok(s.rows <= 500, `${lane}: a sort of ${s.rows} rows (${s.key}), at most the chunk's 500`);
    t.same(plan.seqScans, [], `${lane}: no sequential scan`);
  }
});

t.test('two drains at once in one process share the express thread: the second loops in its own event loop', async (t) => {
  const { sql, url } = await freshDatabase(t, { max: 8 });
  const expressLane = startExpressLane({ url });
  t.teardown(() => expressLane.close());
  await insertSources(sql, 2);
  await insertInbox(sql, Array.from({ length: 2000 }, (_, i) => shipment('src-1', i + 1, 'poll')));
  await insertInbox(sql, Array.from({ length: 30 }, (_, i) => shipment('src-2', 50_000 + i, 'webhook')));
  const drain = () => drainInbox(sql, { chunkSize: 500, budgetMs: 60_000, concurrency: 1, expressPerSource: 50, expressLane });
  const [a, b] = await Promise.all([drain(), drain()]);
  t.equal(a.processed + b.processed, 2030, 'every event once, between the two');
  t.equal(expressLane.busy(), false, 'the thread is free again');
  const [{ n }] = await sql`select count(*)::int as n from inbox_events where status <> 'processed'`;
  t.equal(n, 0);
});
