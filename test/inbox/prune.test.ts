import t from 'tap';
import { pruneInbox } from '../../src/inbox/prune.js';
import { freshDatabase } from '../helper.js';

t.test('retention deletes old processed rows in bounded batches, keeps dead ones longer and never touches pending', async (t) => {
  const { sql } = await freshDatabase(t);
  // ages in days × status: 12 processed 40 d old, 3 processed 10 d old, 4 dead 40 d old, 2 dead 100 d old,
  // 1 ignored 100 d old, 2 pending 400 d old; quarantine: 5 samples 10 d old, 1 today; 2 counters 10 d old, 1 today.
  await sql`
    insert into inbox_events (source_id, event_id, body, status, received_at)
    select 's', 'e' || n, '{}', status, now() - (days || ' days')::interval
      from (values ('processed', 40, 12), ('processed', 10, 3), ('dead', 40, 4), ('dead', 100, 2), ('ignored', 100, 1),
                   ('pending', 400, 2)) as v(status, days, k),
           lateral generate_series(1, k) g, lateral (select status || days || '-' || g as n) x`;
  await sql`
    insert into quarantine (reason, status_code, size_bytes, received_at)
    select 'bad_signature', 401, 1, now() - (d || ' days')::interval from unnest(array[10, 10, 10, 10, 10, 0]) d`;
  await sql`
    insert into quarantine_counts (source_id, reason, bucket, status_code, count, bytes)
    select 's', r, date_trunc('hour', now() - (d || ' days')::interval), 401, 100, 1000
      from unnest(array['bad_signature', 'stale_timestamp', 'bad_signature'], array[10, 10, 0]) as u(r, d)`;

  const batches: number[] = [];
  const r = await pruneInbox(sql, {
    processedDays: 30,
    deadDays: 90,
    quarantineDays: 7,
    batchSize: 5,
    now: new Date(),
    onBatch: (p) => batches.push(p.processed + p.deadOrIgnored + p.quarantine),
  });
  t.same(
    { processed: r.processed, deadOrIgnored: r.deadOrIgnored, quarantine: r.quarantine, complete: r.complete },
    { processed: 12, deadOrIgnored: 3, quarantine: 7, complete: true },
    'deleted what is past its retention (quarantine: its own, shorter one, samples and counters)',
  );
  const [q] = await sql`select (select count(*)::int from quarantine) as samples, (select count(*)::int from quarantine_counts) as counters`;
  t.same(q, { samples: 1, counters: 1 }, "today's quarantine samples and counters are kept");
  t.ok(batches.length >= 5, 'in batches of at most 5 rows');
  const left = await sql<{ status: string; n: number }[]>`select status, count(*)::int as n from inbox_events group by status order by status`;
  t.same(left, [{ status: 'dead', n: 4 }, { status: 'pending', n: 2 }, { status: 'processed', n: 3 }], 'the rest is kept');

  let calls = 0;
  const stopped = await pruneInbox(sql, {
    processedDays: 1,
    deadDays: 1,
    quarantineDays: 1,
    batchSize: 1,
    now: new Date(),
    shouldStop: () => calls++ >= 2,
  });
  t.equal(stopped.complete, false, 'a run that hits its budget says so');
  t.equal(stopped.processed, 2, 'and did only what it had time for');
});
