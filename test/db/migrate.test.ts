import t from 'tap';
import { migrationsApplied, runMigrations } from '../../src/db/migrate.js';
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
