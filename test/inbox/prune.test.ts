import t from 'tap';
import type { Sql } from '../../src/db/client.js';
import { markInboxEvents } from '../../src/inbox/mark.js';
import { pruneInbox, readPruneStart } from '../../src/inbox/prune.js';
import { requeueForReplay } from '../../src/ops/replay.js';
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

// The watermark (inbox_prune_state, migration 0012): a run walks processed rows from where the last complete run
// ended. Below it every row must be dead or ignored (or gone); these tests break that in each way a row can come back.

/** Inserts inbox rows in this order (so ids follow it), each [status, age in days]; returns their ids. */
async function rows(sql: Sql, spec: [string, number][]): Promise<number[]> {
  const inserted = await sql<{ id: string }[]>`
    insert into inbox_events (source_id, event_id, body, status, received_at)
    select 's', 'w' || n || '-' || md5(random()::text), '{}', status, now() - days * interval '1 day'
      from unnest(${spec.map((r) => r[0])}::text[], ${spec.map((r) => r[1])}::int[]) with ordinality as u(status, days, n)
     order by n
    returning id`;
  return inserted.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/** A run with the default retentions (processed 30 days, dead and ignored 90), in batches of `batchSize`. */
const prune = (sql: Sql, o: { batchSize?: number; onBatch?: (r: { processed: number }) => unknown } = {}) =>
  pruneInbox(sql, { processedDays: 30, deadDays: 90, quarantineDays: 7, batchSize: o.batchSize ?? 2, now: new Date(), onBatch: o.onBatch });

const watermark = async (sql: Sql) => (await readPruneStart(sql)).processedAfterId;
const statusOf = async (sql: Sql, id: number) =>
  (await sql<{ status: string }[]>`select status from inbox_events where id = ${id}`)[0]?.status ?? 'gone';
/** Pending or processed rows at or below the watermark: what a walk from it would never see (must be none). */
const hiddenRows = async (sql: Sql) =>
  (
    await sql<{ n: number }[]>`
      select count(*)::int as n from inbox_events
       where status in ('pending', 'processed') and id <= (select processed_after_id from inbox_prune_state)`
  )[0].n;
const processed = (id: number) => ({ id, status: 'processed' as const, error: null });

t.test('a run stores where its walk ended, and the next run starts there', async (t) => {
  const { sql } = await freshDatabase(t);
  t.equal(await watermark(sql), 0, 'the migration seeds the watermark at 0');
  const ids = await rows(sql, [
    ...Array.from({ length: 5 }, (): [string, number] => ['processed', 40]),
    ['dead', 40],
    ['ignored', 40],
    ...Array.from({ length: 4 }, (): [string, number] => ['processed', 40]),
  ]);
  const first = await prune(sql, { batchSize: 3 });
  t.equal(first.processed, 9, 'the first run deleted the old processed rows');
  t.equal(await watermark(sql), ids[10], 'and stored the last id it walked to');
  t.equal(await hiddenRows(sql), 0, 'below it only dead and ignored rows are left');

  // A row the walk must not reach: an explicit id below the watermark (no writer inserts so; migration 0012). A walk
  // from the first id would delete it.
  await sql`
    insert into inbox_events (id, source_id, event_id, body, status, received_at)
    values (${ids[0]}, 's', 'planted', '{}', 'processed', now() - interval '40 days')`;
  const [later] = await rows(sql, [['processed', 40]]);
  const second = await prune(sql, { batchSize: 3 });
  t.equal(second.processed, 1, 'the second run deleted only the row that arrived after the watermark');
  t.equal(await statusOf(sql, later), 'gone', 'that row');
  t.equal(await statusOf(sql, ids[0]), 'processed', 'and started after the stored watermark');
});

t.test('a processed row newer than the cutoff keeps the watermark below it, however ids and received_at disagree', async (t) => {
  const { sql } = await freshDatabase(t);
  // The second row was received after the cutoff but has an earlier id than old rows (as rows near the cutoff can:
  // received_at is the inserting transaction's start); the bisection's bound lies past it.
  const ids = await rows(sql, [['processed', 40], ['processed', 10], ['processed', 40], ['processed', 40], ['processed', 40], ['processed', 40]]);
  const r = await prune(sql, { batchSize: 2 });
  t.equal(r.processed, 5, 'the old rows are deleted, the newer one kept');
  t.equal(await statusOf(sql, ids[1]), 'processed');
  t.equal(await watermark(sql), ids[1] - 1, 'the watermark stays below the row kept');
  await sql`update inbox_events set received_at = now() - interval '40 days' where id = ${ids[1]}`;
  t.equal((await prune(sql)).processed, 1, 'once old, the next run deletes it');
});

t.test('a dead row replayed after a run, then processed, is pruned by a later run', async (t) => {
  const { sql } = await freshDatabase(t);
  const ids = await rows(sql, [['processed', 40], ['processed', 40], ['dead', 40], ['processed', 40], ['processed', 40]]);
  await prune(sql);
  t.equal(await watermark(sql), ids[4], 'the run passed the dead row');
  t.same(await requeueForReplay(sql, { status: 'dead' }, { afterId: 0, limit: 10 }), [ids[2]], 'replayed');
  t.equal(await watermark(sql), ids[2] - 1, 'the replay lowered the watermark below the row');
  await markInboxEvents(sql, [processed(ids[2])]);
  t.equal((await prune(sql)).processed, 1, 'the next run deleted it');
  t.equal(await statusOf(sql, ids[2]), 'gone');
});

t.test('a pending row older than the cutoff left by a run and processed afterwards is pruned by a later run', async (t) => {
  const { sql } = await freshDatabase(t);
  const ids = await rows(sql, [['processed', 40], ['processed', 40], ['pending', 40], ['processed', 40], ['processed', 40]]);
  t.equal((await prune(sql)).processed, 4);
  t.equal(await watermark(sql), ids[1], 'the watermark stays below the pending row');
  const before = await readPruneStart(sql);
  await markInboxEvents(sql, [processed(ids[2])]);
  const after = await readPruneStart(sql);
  t.same(
    { at: after.processedAfterId, reopened: after.reopened },
    { at: before.processedAfterId, reopened: before.reopened },
    "the drain's processed mark leaves the watermark and the reopen count alone (the trigger did not run)",
  );
  t.equal((await prune(sql)).processed, 1, 'the next run deleted the row');
  t.equal(await statusOf(sql, ids[2]), 'gone');
});

t.test('a pending row processed while a run walks past it is pruned by the next run', async (t) => {
  const { sql } = await freshDatabase(t);
  const ids = await rows(sql, [['processed', 40], ['processed', 40], ['pending', 40], ['processed', 40], ['processed', 40], ['processed', 40]]);
  let marked = false;
  const r = await prune(sql, {
    onBatch: async (p) => {
      // After the second batch (ids 4 and 5) the walk is past the pending row: the drain marks it now.
      if (p.processed === 4 && !marked) {
        marked = true;
        await markInboxEvents(sql, [processed(ids[2])]);
      }
    },
  });
  t.ok(marked, 'the row was marked during the walk');
  t.equal(r.processed, 5, 'the run deleted the rows it reached');
  t.equal(await watermark(sql), ids[1], 'the watermark stays below the row pending at the start');
  t.equal((await prune(sql)).processed, 1, 'the next run deleted it');
});

t.test('a dead row replayed and processed while a run walks past it is pruned by the next run', async (t) => {
  const { sql } = await freshDatabase(t);
  const ids = await rows(sql, [['processed', 40], ['processed', 40], ['dead', 40], ['processed', 40], ['processed', 40], ['processed', 40]]);
  let replayed = false;
  await prune(sql, {
    onBatch: async (p) => {
      if (p.processed === 4 && !replayed) {
        replayed = true;
        await requeueForReplay(sql, { status: 'dead' }, { afterId: 0, limit: 10 });
        await markInboxEvents(sql, [processed(ids[2])]);
      }
    },
  });
  t.ok(replayed, 'the row was replayed and processed during the walk');
  t.equal(await watermark(sql), 0, 'the run saw the reopen and did not store its watermark');
  t.equal(await hiddenRows(sql), 0, 'no processed row is left below the watermark');
  t.equal((await prune(sql)).processed, 1, 'the next run deleted the row');
});

t.test('hand-written SQL that makes a dead row processed lowers the watermark too', async (t) => {
  const { sql } = await freshDatabase(t);
  const ids = await rows(sql, [['processed', 40], ['ignored', 40], ['processed', 40]]);
  await prune(sql);
  t.equal(await watermark(sql), ids[2]);
  await sql`update inbox_events set status = 'processed' where id = ${ids[1]}`;
  t.equal(await watermark(sql), ids[1] - 1, 'lowered below the row');
  t.equal((await prune(sql)).processed, 1, 'which the next run deletes');
});

t.test('a replay of many rows in one statement lowers the watermark below the lowest of them', async (t) => {
  const { sql } = await freshDatabase(t);
  const spec: [string, number][] = Array.from({ length: 40 }, (_, i) => [i % 4 === 1 ? 'dead' : 'processed', 40]);
  const ids = await rows(sql, spec);
  const dead = ids.filter((_, i) => spec[i][0] === 'dead');
  await prune(sql, { batchSize: 50 });
  t.equal(await watermark(sql), ids[39]);
  const before = (await readPruneStart(sql)).reopened;
  // Highest ids first, as a statement may visit them: a nested loop over the list (forced: on a table this small the
  // planner would scan it in id order).
  const visited = await sql.begin(async (tx) => {
    await tx`set local enable_seqscan = off`;
    await tx`set local enable_hashjoin = off`;
    await tx`set local enable_mergejoin = off`;
    return tx<{ id: string }[]>`
      update inbox_events e set status = 'pending' from unnest(${[...dead].reverse()}::bigint[]) as u(id)
       where e.id = u.id returning e.id`;
  });
  t.same(visited.map((r) => Number(r.id)), [...dead].reverse(), 'the statement visited the highest ids first');
  const after = await readPruneStart(sql);
  t.equal(after.processedAfterId, dead[0] - 1, 'below the lowest replayed row');
  t.ok(after.reopened > before, 'and counted');
});

t.test('a replay of 2,000 rows in one statement updates the state row for each lower id it meets, not for each row', async (t) => {
  const { sql } = await freshDatabase(t);
  await rows(sql, Array.from({ length: 2000 }, (): [string, number] => ['dead', 40]));
  const updates = await sql.begin(async (tx) => {
    await requeueForReplay(tx as unknown as Sql, { status: 'dead' }, { afterId: 0, limit: 2000 });
    const [r] = await tx<{ n: number }[]>`
      select n_tup_upd::int as n from pg_stat_xact_user_tables where relname = 'inbox_prune_state'`;
    return r.n;
  });
  // Each update of one row in one transaction leaves a version the next one steps over: per row, n * n / 2 visits.
  t.ok(updates <= 50, `${updates} update(s) of the state row (one per new lowest id: a few in any order but a falling one)`);
});

t.test('in one transaction, a replay after a prune run raised the watermark lowers it again', async (t) => {
  const { sql } = await freshDatabase(t);
  const ids = await rows(sql, [['processed', 40], ['dead', 40], ['processed', 40], ['dead', 40], ['processed', 40]]);
  await prune(sql);
  t.equal(await watermark(sql), ids[4]);
  await sql.begin(async (tx) => {
    const s = tx as unknown as Sql;
    await requeueForReplay(s, { status: 'dead', until: new Date() }, { afterId: 0, limit: 1 });
    t.equal(await watermark(s), ids[1] - 1, 'the first replay lowered it');
    await markInboxEvents(s, [processed(ids[1])]);
    await prune(s);
    t.equal(await watermark(s), ids[3], 'the run in the same transaction raised it');
    await requeueForReplay(s, { status: 'dead' }, { afterId: 0, limit: 1 });
    t.equal(await watermark(s), ids[3] - 1, 'a later statement lowers it again below its row');
  });
});

t.test('runs at once, beside replays and marks, never leave a pending or processed row below the watermark', async (t) => {
  const { sql } = await freshDatabase(t, { max: 6 });
  const spec: [string, number][] = Array.from({ length: 300 }, (_, i) => [
    i % 7 === 3 ? 'dead' : i % 11 === 5 ? 'pending' : 'processed',
    i < 200 ? 40 : 10,
  ]);
  const ids = await rows(sql, spec);
  const dead = ids.filter((_, i) => spec[i][0] === 'dead');
  const pending = ids.filter((_, i) => spec[i][0] === 'pending');
  const yieldNow = () => new Promise((r) => setImmediate(r));
  await Promise.all([
    prune(sql, { batchSize: 7, onBatch: yieldNow }),
    prune(sql, { batchSize: 5, onBatch: yieldNow }),
    (async () => {
      for (const id of dead.slice(0, 15)) {
        await sql`update inbox_events set status = 'pending' where id = ${id}`;
        await yieldNow();
        await markInboxEvents(sql, [processed(id)]);
      }
      for (const id of pending) await markInboxEvents(sql, [processed(id)]);
    })(),
  ]);
  t.equal(await hiddenRows(sql), 0, 'every pending or processed row is above the watermark');
  await prune(sql, { batchSize: 50 });
  const [left] = await sql<{ n: number }[]>`
    select count(*)::int as n from inbox_events where status = 'processed' and received_at < now() - interval '30 days'`;
  t.equal(left.n, 0, 'and a later run deletes every old processed row');
});
