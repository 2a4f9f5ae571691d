import t, { type Test } from 'tap';
import type { Sql } from '../../src/db/client.js';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { insertInboxEvents, type NewInboxEvent } from '../../src/inbox/insert-events.js';
import { pruneInbox } from '../../src/inbox/prune.js';
import { readOpsPage } from '../../src/ops/page/queries.js';
import { requeueForReplay } from '../../src/ops/replay.js';
import { readStatus } from '../../src/ops/status.js';
import { shipmentBody } from '../apply/factory.js';
import { freshDatabase } from '../helper.js';

// Dead and ignored inbox rows are counted by triggers (migration 0009) into inbox_finished_counts; status, /metrics and
// the ops page read those counters. They must equal a count(*) of the rows after every kind of write.

/** The counters summed per (status, source, topic, reason), and the same counted from the rows. */
async function both(sql: Sql) {
  const counters = await sql<{ k: string; n: number }[]>`
    select concat_ws('|', status, source_id, coalesce(topic, '∅'), coalesce(min(reason), '∅')) as k, sum(count)::int as n
      from inbox_finished_counts group by status, source_id, topic, reason_key having sum(count) <> 0 order by 1`;
  const rows = await sql<{ k: string; n: number }[]>`
    select concat_ws('|', status, source_id, coalesce(topic, '∅'), coalesce(last_error, '∅')) as k, count(*)::int as n
      from inbox_events where status in ('dead', 'ignored') group by 1 order by 1`;
  return { counters, rows };
}

async function exact(t: Test, sql: Sql, after: string) {
  const { counters, rows } = await both(sql);
  t.same(counters, rows, `the counters equal a count of the rows after ${after}`);
  const s = await readStatus(sql, { staleAfterMs: 60_000 });
  const [c] = await sql<{ dead: number; ignored: number }[]>`
    select count(*) filter (where status = 'dead')::int as dead, count(*) filter (where status = 'ignored')::int as ignored
      from inbox_events`;
  t.same({ dead: s.inbox.dead, ignored: s.inbox.ignored }, c, `ops status's dead and ignored equal count(*) after ${after}`);
  const page = await readOpsPage(sql, { now: new Date(), staleAfterMs: 60_000 });
  const byReason = await sql<{ reason: string | null; count: number }[]>`
    select last_error as reason, count(*)::float8 as count from inbox_events where status = 'dead'
     group by last_error order by count(*) desc, last_error`;
  t.same(page.deadGroups.map((g) => ({ reason: g.reason, count: g.count })), byReason, `the page's groups after ${after}`);
  t.equal(page.inbox.dead, c.dead, `the page's dead total after ${after}`);
}

const ev = (sourceId: string, eventId: string, topic: string, body: unknown): NewInboxEvent => ({
  sourceId,
  eventId,
  topic,
  body: JSON.stringify(body),
  headers: null,
  eventTime: null,
  via: 'webhook',
});

t.test('status and page counts stay equal to count(*) through marks, replays, prunes, rollbacks and hand-written SQL', async (t) => {
  const db = await freshDatabase(t);
  const { sql } = db;
  await insertInboxEvents(sql, [
    ev('acme', 'ok-1', 'order.shipment.updated', shipmentBody(501, 10)),
    ev('acme', 'ok-2', 'order.shipment.updated', shipmentBody(502, 10)),
    ev('acme', 'str-1', 'order.shipment.updated', 'a string'),
    ev('acme', 'str-2', 'order.shipment.updated', 'a string'),
    ev('globex', 'str-3', 'order.shipment.delivered', 'a string'),
    ev('globex', 'unk-1', 'no.such.topic', { id: 1 }),
    ev('globex', 'unk-2', 'no.such.topic', { id: 2 }),
  ]);
  await exact(t, sql, 'inserts of pending rows');
  await drainInbox(sql, { chunkSize: 500, budgetMs: 10_000 });
  const [marked] = await sql<{ dead: number; ignored: number }[]>`
    select count(*) filter (where status = 'dead')::int as dead, count(*) filter (where status = 'ignored')::int as ignored from inbox_events`;
  t.same(marked, { dead: 3, ignored: 2 }, 'the drain marked three dead and two ignored');
  await exact(t, sql, 'the drain marked them');

  // A duplicate delivery of a dead event bumps its duplicate count only.
  await insertInboxEvents(sql, [ev('acme', 'str-1', 'order.shipment.updated', 'a string')]);
  await exact(t, sql, 'a duplicate of a dead event');

  // Replay: dead rows back to pending (out of the counts), then drained dead again.
  const requeued = await requeueForReplay(sql, { status: 'dead', sourceId: 'acme' }, { afterId: 0, limit: 100 });
  t.equal(requeued.length, 2, 'two dead rows of acme requeued');
  await exact(t, sql, 'a replay requeued them');
  await drainInbox(sql, { chunkSize: 500, budgetMs: 10_000 });
  await exact(t, sql, 'the replayed rows were drained again');

  // A transaction that marks rows dead and rolls back leaves the counts as they were.
  await sql
    .begin(async (tx) => {
      await tx`update inbox_events set status = 'dead', last_error = 'rolled back' where status = 'processed'`;
      throw new Error('roll back');
    })
    .catch(() => {});
  await exact(t, sql, 'a rolled-back mark');

  // Hand-written SQL: a processed row turned dead (as resolve does), a reason and a topic changed, an insert.
  await sql`update inbox_events set status = 'dead', last_error = 'resolve: not found' where event_id = 'ok-1'`;
  await sql`update inbox_events set last_error = 'another reason' where event_id = 'str-3'`;
  await sql`update inbox_events set topic = null where event_id = 'unk-1'`;
  await sql`insert into inbox_events (source_id, event_id, topic, body, status, last_error) values ('initech', 'h-1', null, '{}', 'dead', null)`;
  await exact(t, sql, 'hand-written updates and an insert');

  // Two transactions marking rows dead at once (two backends: two slots, no wait on one counter row).
  await insertInboxEvents(sql, Array.from({ length: 20 }, (_, i) => ev('acme', `c-${i}`, 'order.shipment.updated', { n: i })));
  const ids = (await sql<{ id: string }[]>`select id from inbox_events where event_id like 'c-%' order by id`).map((r) => r.id);
  await Promise.all(
    [ids.slice(0, 10), ids.slice(10)].map((part) =>
      sql.begin(async (tx) => {
        await tx`update inbox_events set status = 'dead', last_error = 'concurrent' where id = any(${part}::bigint[])`;
        await tx`select pg_sleep(0.05)`;
      }),
    ),
  );
  await exact(t, sql, 'two concurrent marks');

  // Retention: old dead and ignored rows deleted in batches.
  await sql`update inbox_events set received_at = now() - interval '100 days' where status in ('dead', 'ignored') and source_id <> 'initech'`;
  const pruned = await pruneInbox(sql, { processedDays: 30, deadDays: 90, quarantineDays: 7, batchSize: 4, now: new Date() });
  t.ok(pruned.deadOrIgnored > 4, `retention deleted ${pruned.deadOrIgnored} dead and ignored rows, in several batches`);
  await exact(t, sql, 'a prune');
  const [left] = await sql<{ n: number }[]>`select count(*)::int as n from inbox_finished_counts where count = 0`;
  t.equal(left.n, 0, 'the prune removes counter rows that fell to zero');
  await sql`delete from inbox_events`;
  await exact(t, sql, 'deleting every row');
  t.same(await readStatus(sql, { staleAfterMs: 60_000 }).then((s) => [s.inbox.dead, s.inbox.ignored]), [0, 0], 'nothing left');
});
