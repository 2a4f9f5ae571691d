import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { migrationsApplied, runMigrations } from '../../src/db/migrate.js';
import { migrationsDir } from '../../src/paths.js';
import { freshDatabase } from '../helper.js';

t.test('a fresh test database is fully migrated, and migrating again applies nothing', async (t) => {
  const { sql, url } = await freshDatabase(t);
  t.equal(await migrationsApplied(sql), true);
  const before = await sql`select count(*)::int as n from drizzle.__drizzle_migrations`;
  await runMigrations(url);
  const after = await sql`select count(*)::int as n from drizzle.__drizzle_migrations`;
  t.equal(after[0].n, before[0].n);
  const [inbox] = await sql`select to_regclass('inbox_events') is not null as ok`;
  t.equal(inbox.ok, true);
});

t.test('0012 seeds the prune watermark at 0 once: applied again, it keeps the stored one', async (t) => {
  const { sql, url } = await freshDatabase(t);
  t.same(await sql`select id, processed_after_id::int as at, reopened::int from inbox_prune_state`, [{ id: true, at: 0, reopened: 0 }]);
  await sql`update inbox_prune_state set processed_after_id = 42`;
  // The file applied again (its record deleted, as the upgrade tests of 0007 and 0009 do): every statement is idempotent.
  const journal = JSON.parse(readFileSync(path.join(migrationsDir, 'meta', '_journal.json'), 'utf8'));
  const when: number = journal.entries.find((e: { tag: string }) => e.tag === '0012_prune_watermark').when;
  await sql`delete from drizzle.__drizzle_migrations where created_at >= ${when}`;
  await runMigrations(url);
  t.same(await sql`select processed_after_id::int as at from inbox_prune_state`, [{ at: 42 }], 'one row, where it stood');
  await t.rejects(sql`insert into inbox_prune_state (id) values (false)`, { code: '23514' }, 'a second row is refused');
});
