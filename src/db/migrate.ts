import { readFileSync } from 'node:fs';
import path from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { Logger, runMigrations as runWorkerMigrations } from 'graphile-worker';
import postgres from 'postgres';
import { migrationsDir } from '../paths.js';
import type { Sql } from './client.js';

/** Any constant: serialises migrations of processes starting at once (web and worker, several machines). */
const MIGRATION_LOCK = 7_202_611_22;
const quietLogger = new Logger(() => () => {});

/**
 * Applies our migrations (drizzle-kit output in migrations/) and graphile-worker's, under an advisory lock.
 * Idempotent: a second run applies nothing. `afterMigrate` runs under the same lock, after them: the data steps a SQL
 * migration cannot do (encrypting the values it marked, with the key only the process holds); it must be idempotent.
 */
export async function runMigrations(url: string, opts: { afterMigrate?: (sql: Sql) => Promise<void> } = {}): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK})`;
    await migrate(drizzle(sql), { migrationsFolder: migrationsDir });
    await runWorkerMigrations({ connectionString: url, logger: quietLogger });
    await opts.afterMigrate?.(sql as unknown as Sql);
    await sql`select pg_advisory_unlock(${MIGRATION_LOCK})`;
  } finally {
    await sql.end();
  }
}

/** How many of our migrations the code expects (readiness compares it with the database). */
export function expectedMigrationCount(): number {
  const journal = JSON.parse(readFileSync(path.join(migrationsDir, 'meta', '_journal.json'), 'utf8'));
  return journal.entries.length;
}

/** True when every migration this code knows is applied and graphile-worker's schema exists. */
export async function migrationsApplied(sql: Sql): Promise<boolean> {
  const [row] = await sql<{ applied: number; worker: boolean }[]>`
    select (select count(*)::int from drizzle.__drizzle_migrations) as applied,
           to_regclass('graphile_worker._private_jobs') is not null as worker`;
  return row.applied >= expectedMigrationCount() && row.worker;
}
