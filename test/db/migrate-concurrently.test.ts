import { readFileSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { concurrentStatements, runMigrations } from '../../src/db/migrate.js';
import { migrationsDir } from '../../src/paths.js';
import { freshDatabase } from '../helper.js';
import { waitFor } from '../wait.js';

const FILE = '0007_scale_indexes';
const journal = JSON.parse(readFileSync(path.join(migrationsDir, 'meta', '_journal.json'), 'utf8'));
const when: number = journal.entries.find((e: { tag: string }) => e.tag === FILE).when;
const statements = readFileSync(path.join(migrationsDir, `${FILE}.sql`), 'utf8').split('--> statement-breakpoint');

/** Puts a migrated database back to just before 0007 (as a database made by an older release is). */
async function undo0007(sql: postgres.Sql) {
  await sql`delete from drizzle.__drizzle_migrations where created_at >= ${when}`;
  await sql`drop index if exists shipments_timeline_due_source_idx`;
  await sql`drop index if exists transactions_pending_return_idx`;
  await sql.unsafe(`create index shipments_timeline_due_idx on shipments (timeline_next_check_at)
                     where delivered_at is null and status not in ('Cancelled', 'CleanSweeped')`);
}

const indexState = (sql: postgres.Sql) => sql<{ name: string; valid: boolean }[]>`
  select c.relname as name, i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid
   where c.relname in ('shipments_timeline_due_source_idx', 'transactions_pending_return_idx', 'shipments_timeline_due_idx')
   order by 1`;

t.test('a migration marked concurrently has its index statements rewritten to run CONCURRENTLY', async (t) => {
  const found = concurrentStatements(statements);
  t.same(
    found.map((s) => [s.kind, s.index]),
    [
      ['create', 'shipments_timeline_due_source_idx'],
      ['drop', 'shipments_timeline_due_idx'],
      ['create', 'transactions_pending_return_idx'],
    ],
  );
  t.ok(found.every((s) => /^(CREATE INDEX CONCURRENTLY IF NOT EXISTS|DROP INDEX CONCURRENTLY IF EXISTS) "/.test(s.text)));
  t.same(concurrentStatements(['CREATE INDEX IF NOT EXISTS "x" ON "t" ("a")']), [], 'an unmarked migration runs as written');
});

t.test('0007 builds its indexes while writes to the table go on, and leaves them valid', async (t) => {
  const { sql, url } = await freshDatabase(t);
  await undo0007(sql);
  await sql`insert into sources (id, name) values ('s1', 's1')`;
  // An open writer: CREATE INDEX CONCURRENTLY waits for it to end, a plain CREATE INDEX would too, but only the plain
  // one would make every later write to shipments queue behind it.
  const writer = postgres(url, { max: 1, onnotice: () => {} });
  const other = postgres(url, { max: 1, onnotice: () => {} });
  t.teardown(async () => {
    await writer.end({ timeout: 1 });
    await other.end({ timeout: 1 });
  });
  const holder = await writer.reserve();
  await holder`begin`;
  await holder`insert into shipments (id, source_id, event_time, event_inbox_id) values (1, 's1', now(), 1)`;

  const migrating = runMigrations(url);
  await waitFor(async () => {
    const [r] = await sql`
      select count(*)::int as n from pg_stat_activity
       where query ilike 'CREATE INDEX CONCURRENTLY%' and wait_event_type = 'Lock'`;
    return r.n > 0 ? true : undefined;
  }, 'the concurrent build to wait for the open writer');
  await other`set lock_timeout = '3s'`;
  await other`insert into shipments (id, source_id, event_time, event_inbox_id) values (2, 's1', now(), 2)`;
  t.pass('a write to shipments went through while the index was being built');
  await holder`commit`;
  holder.release();
  await migrating;

  t.same(await indexState(sql), [
    { name: 'shipments_timeline_due_source_idx', valid: true },
    { name: 'transactions_pending_return_idx', valid: true },
  ]);
  const [rec] = await sql`select count(*)::int as n from drizzle.__drizzle_migrations where created_at = ${when}`;
  t.equal(rec.n, 1, 'and the migration is recorded once');
});

t.test('an index a crashed concurrent build left INVALID is built again', async (t) => {
  const { sql, url } = await freshDatabase(t);
  await undo0007(sql);
  await sql.unsafe(`create index shipments_timeline_due_source_idx on shipments (source_id)`);
  await sql`update pg_index set indisvalid = false where indexrelid = 'shipments_timeline_due_source_idx'::regclass`;
  await runMigrations(url);
  t.same(await indexState(sql), [
    { name: 'shipments_timeline_due_source_idx', valid: true },
    { name: 'transactions_pending_return_idx', valid: true },
  ]);
  const [def] = await sql`select pg_get_indexdef('shipments_timeline_due_source_idx'::regclass) as d`;
  t.match(def.d, /COALESCE\(timeline_next_check_at/, 'with its real definition, not the leftover');
});

t.test('two processes migrating a fresh database at once both succeed', async (t) => {
  const { sql, url } = await freshDatabase(t);
  await sql`drop schema public cascade`;
  await sql`drop schema drizzle cascade`;
  await sql`drop schema graphile_worker cascade`;
  await sql`create schema public`;
  await Promise.all([runMigrations(url), runMigrations(url)]);
  const [rec] = await sql`select count(*)::int as n from drizzle.__drizzle_migrations`;
  t.equal(rec.n, journal.entries.length);
  t.same((await indexState(sql)).map((r) => r.valid), [true, true]);
});

t.test('the inbox is vacuumed every 2% of dead rows, whatever its size', async (t) => {
  const { sql } = await freshDatabase(t);
  const [r] = await sql<{ options: string[] }[]>`select reloptions as options from pg_class where relname = 'inbox_events'`;
  t.same([...r.options].sort(), ['autovacuum_vacuum_insert_scale_factor=0.02', 'autovacuum_vacuum_scale_factor=0.02']);
});

t.test('0009 adds its column before the indexes on it, and counts the dead and ignored rows an older release left', async (t) => {
  const file = '0009_inbox_counts';
  const text = readFileSync(path.join(migrationsDir, `${file}.sql`), 'utf8').split('--> statement-breakpoint');
  t.same(
    concurrentStatements(text).map((s) => [s.kind, s.index]),
    [
      ['column', 'inbox_events'],
      ['create', 'inbox_events_entity_keys_idx'],
      ['create', 'inbox_events_dead_reason_idx'],
    ],
    'the column first (instant, no default), then each index CONCURRENTLY',
  );
  const { sql, url } = await freshDatabase(t);
  const at: number = journal.entries.find((e: { tag: string }) => e.tag === file).when;
  // A database of the release before 0009, with finished rows in it.
  await sql`delete from drizzle.__drizzle_migrations where created_at >= ${at}`;
  await sql.unsafe(`drop trigger inbox_events_count_insert on inbox_events;
    drop trigger inbox_events_count_update on inbox_events; drop trigger inbox_events_count_delete on inbox_events;
    drop function wharf_count_finished(); drop table inbox_finished_counts;
    drop index inbox_events_entity_keys_idx; drop index inbox_events_dead_reason_idx;
    alter table inbox_events drop column entity_keys`);
  await sql`
    insert into inbox_events (source_id, event_id, body, status, last_error)
    select 's' || (n % 3), 'e' || n, '{}', (array['dead', 'ignored', 'processed'])[1 + n % 3], 'r' || (n % 2)
      from generate_series(1, 30) n`;
  await runMigrations(url);
  const [c] = await sql<{ counted: number; rows: number; keys: number }[]>`
    select (select sum(count)::int from inbox_finished_counts) as counted,
           (select count(*)::int from inbox_events where status in ('dead', 'ignored')) as rows,
           (select count(*)::int from pg_index i join pg_class x on x.oid = i.indexrelid
             where x.relname in ('inbox_events_entity_keys_idx', 'inbox_events_dead_reason_idx') and i.indisvalid) as keys`;
  t.same(c, { counted: 20, rows: 20, keys: 2 }, 'the existing rows are counted, both indexes valid');
  await sql`update inbox_events set status = 'pending' where status = 'dead'`;
  const [after] = await sql<{ n: number }[]>`select sum(count)::int as n from inbox_finished_counts`;
  t.equal(after.n, 10, 'and the triggers count from then on');
});
