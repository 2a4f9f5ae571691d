import t from 'tap';
import { insertInboxEvents, type NewInboxEvent } from '../../src/inbox/insert-events.js';
import { createGroupCommitter } from '../../src/intake/group-commit.js';
import { freshDatabase } from '../helper.js';

// The inbox insert and the group committer against a real PostgreSQL, without HTTP.

const event = (o: Partial<NewInboxEvent> = {}): NewInboxEvent => ({
  sourceId: 'src_a',
  eventId: `msg_${Math.random().toString(36).slice(2)}`,
  topic: 'order.shipped',
  body: '{"a": 1}',
  headers: { 'webhook-id': 'x' },
  eventTime: null,
  via: 'webhook',
  ...o,
});

t.test('one statement stores a batch, deduplicating keys inside it and counting the copies', async (t) => {
  const statements: string[] = [];
  const { sql } = await freshDatabase(t, { onQuery: (q) => statements.push(q) });
  const a = event({ eventId: 'a', body: 'first "a", with, commas' });
  const b = event({ eventId: 'b', via: 'poll', headers: null, eventTime: '2026-01-01T00:00:00.1234567Z' });
  const results = await insertInboxEvents(sql, [a, b, { ...a, body: 'second a' }, { ...a, sourceId: 'src_b' }]);
  // (postgres.js also reads the server's type list once per connection; that is not ours to count.)
  t.equal(statements.filter((q) => q.includes('inbox_events')).length, 1, 'one statement');
  t.same(results.map((r) => r.inserted), [true, true, false, true]);
  t.equal(results[0].id, results[2].id, 'a copy points at its stored row');
  const rows = await sql`select source_id, event_id, body, via, duplicate_count, headers, event_time is not null as has_time
                           from inbox_events order by source_id, event_id`;
  t.same(
    rows.map((r) => [r.source_id, r.event_id, r.body, r.via, r.duplicate_count]),
    [
      ['src_a', 'a', 'first "a", with, commas', 'webhook', 1],
      ['src_a', 'b', '{"a": 1}', 'poll', 0],
      ['src_b', 'a', 'first "a", with, commas', 'webhook', 0],
    ],
  );
  t.same(rows[0].headers, { 'webhook-id': 'x' }, 'headers stored as a JSON object');
  t.equal(rows[1].headers, null);
  t.ok(rows[1].has_time);
});

t.test('a later batch counts its copies as duplicates and keeps the first body', async (t) => {
  const { sql } = await freshDatabase(t);
  const a = event({ eventId: 'a' });
  await insertInboxEvents(sql, [a]);
  const results = await insertInboxEvents(sql, [{ ...a, body: 'changed' }, { ...a, body: 'changed' }, event({ eventId: 'c' })]);
  t.same(results.map((r) => r.inserted), [false, false, true]);
  const [row] = await sql`select body, duplicate_count from inbox_events where event_id = 'a'`;
  t.equal(row.body, a.body);
  t.equal(row.duplicate_count, 2);
  t.same(await insertInboxEvents(sql, []), []);
});

t.test('the group committer batches concurrent submissions and answers each after its commit', async (t) => {
  const statements: string[] = [];
  const { sql } = await freshDatabase(t, { onQuery: (q) => statements.push(q) });
  const committer = createGroupCommitter({ sql, maxInFlight: 2, maxBatchRows: 100, maxBatchBytes: 1 << 20, maxQueuedRows: 10_000 });
  const events = Array.from({ length: 300 }, (_, i) => event({ eventId: `e${i % 250}` }));
  const results = await Promise.all(events.map((e) => committer.submit(e, 5000)));
  t.equal(results.filter((r) => r.inserted).length, 250);
  const [{ n, dups }] = await sql`select count(*)::int as n, sum(duplicate_count)::int as dups from inbox_events`;
  t.equal(n, 250);
  t.equal(dups, 50);
  const inserts = statements.filter((q) => q.includes('insert into inbox_events')).length;
  t.ok(inserts >= 3 && inserts <= 10, `300 rows in ${inserts} statements (batches of at most 100)`);
  t.equal(committer.pending, 0);
  await committer.close();
});

t.test('the group committer refuses at once when its queue is full, and fails a batch the database refuses', async (t) => {
  const { sql } = await freshDatabase(t);
  const full = createGroupCommitter({ sql, maxInFlight: 1, maxBatchRows: 10, maxBatchBytes: 1 << 20, maxQueuedRows: 1 });
  const first = full.submit(event(), 5000);
  await t.rejects(full.submit(event(), 5000), { code: 'DB_UNAVAILABLE' });
  await first;
  // A batch the database refuses (NUL is not storable in text) fails every request in it with 503, none hangs.
  const results = await Promise.allSettled([full.submit(event({ body: 'a\u0000b' }), 5000)]);
  t.equal(results[0].status, 'rejected');
  t.match((results[0] as PromiseRejectedResult).reason, { code: 'DB_UNAVAILABLE', statusCode: 503 });
  await full.close();
});
