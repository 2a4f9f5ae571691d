import { readFileSync } from 'node:fs';
import path from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import { readMigrationFiles, type MigrationMeta } from 'drizzle-orm/migrator';
import { Logger, runMigrations as runWorkerMigrations } from 'graphile-worker';
import postgres from 'postgres';
import { migrationsDir } from '../paths.js';
import type { Sql } from './client.js';

/** Any constant: serialises migrations of processes starting at once (web and worker, several machines). */
const MIGRATION_LOCK = 7_202_611_22;
const LOCK_WAIT_MS = 10 * 60_000;
const quietLogger = new Logger(() => () => {});

/** First line of a migration whose index statements are built CONCURRENTLY before the file runs (see below). */
export const CONCURRENT_MARKER = '-- wharf:concurrently';

interface DrizzleInternals {
  dialect: { migrate(m: MigrationMeta[], session: unknown, config: { migrationsFolder: string }): Promise<void> };
  session: unknown;
}

/**
 * Applies our migrations (hand-written SQL in migrations/) and graphile-worker's, under an advisory lock.
 * Idempotent: a second run applies nothing. `afterMigrate` runs under the same lock, after them: the data steps a SQL
 * migration cannot do (encrypting the values it marked, with the key only the process holds); it must be idempotent.
 *
 * drizzle's migrator runs every pending migration in ONE transaction, where CREATE INDEX CONCURRENTLY is refused, and
 * a plain CREATE INDEX on a large table blocks its writes for the whole build. So a migration whose first line is
 * `-- wharf:concurrently` is applied in three steps: drizzle applies the migrations before it; then each of its
 * `CREATE [UNIQUE] INDEX IF NOT EXISTS` and `DROP INDEX IF EXISTS` statements runs here as `… CONCURRENTLY`, alone,
 * in autocommit (an index a crashed build left INVALID is dropped and built again), after the file's `ALTER TABLE …
 * ADD COLUMN IF NOT EXISTS` statements without a default (instant), so an index may be on a new column; then drizzle applies the file
 * itself in its transaction, where those statements find their work done, and records it. A crash between the steps
 * is safe: the next run repeats the concurrent step (IF NOT EXISTS) and the file.
 *
 * The lock is taken by polling pg_try_advisory_lock, never by waiting in pg_advisory_lock: a session waiting there
 * holds a snapshot, and CREATE INDEX CONCURRENTLY waits for every older snapshot to end: the two would wait on each
 * other.
 */
export async function runMigrations(url: string, opts: { afterMigrate?: (sql: Sql) => Promise<void> } = {}): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await takeMigrationLock(sql);
    const config = { migrationsFolder: migrationsDir };
    const migrations = readMigrationFiles(config);
    const db = drizzle(sql) as unknown as DrizzleInternals;
    const applyUpTo = (n: number) => db.dialect.migrate(migrations.slice(0, n), db.session, config);
    for (const [i, m] of migrations.entries()) {
      const statements = concurrentStatements(m.sql);
      if (statements.length === 0 || !(await isPending(sql, m.folderMillis))) continue;
      await applyUpTo(i);
      for (const s of statements) await runConcurrently(sql, s);
    }
    await applyUpTo(migrations.length);
    await runWorkerMigrations({ connectionString: url, logger: quietLogger });
    await opts.afterMigrate?.(sql as unknown as Sql);
    await sql`select pg_advisory_unlock(${MIGRATION_LOCK})`;
  } finally {
    await sql.end();
  }
}

async function takeMigrationLock(sql: Sql): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    const [row] = await sql<{ ok: boolean }[]>`select pg_try_advisory_lock(${MIGRATION_LOCK}) as ok`;
    if (row.ok) return;
    if (Date.now() > deadline) throw new Error('another process has been migrating this database for 10 minutes');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** drizzle's rule: a migration is pending when its `when` is after the newest one recorded. */
async function isPending(sql: Sql, folderMillis: number): Promise<boolean> {
  const [table] = await sql<{ exists: boolean }[]>`
    select to_regclass('drizzle.__drizzle_migrations') is not null as exists`;
  if (!table.exists) return true;
  const [row] = await sql<{ last: string | null }[]>`select max(created_at)::text as last from drizzle.__drizzle_migrations`;
  return row.last === null || Number(row.last) < folderMillis;
}

export interface ConcurrentStatement {
  kind: 'column' | 'create' | 'drop';
  /** The index's name, as written (unquoted); for a column, the table's. */
  index: string;
  /** The statement as it runs outside a transaction. */
  text: string;
}

/**
 * The index statements of a migration (its statements, split at the breakpoints) marked `-- wharf:concurrently`, rewritten to run CONCURRENTLY; none for an
 * unmarked one. Other statements of a marked file run only in drizzle's transaction.
 */
export function concurrentStatements(statements: readonly string[]): ConcurrentStatement[] {
  if (!statements[0]?.startsWith(CONCURRENT_MARKER)) return [];
  const out: ConcurrentStatement[] = [];
  const columns: ConcurrentStatement[] = [];
  for (const raw of statements) {
    const stmt = raw
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('--'))
      .join('\n')
      .trim()
      .replace(/;$/, '');
    const column = /^ALTER TABLE "?([\w]+)"? ADD COLUMN IF NOT EXISTS [^;]+$/i.exec(stmt);
    if (column && !/\bDEFAULT\b/i.test(stmt)) {
      columns.push({ kind: 'column', index: column[1], text: stmt });
      continue;
    }
    const create = /^CREATE (UNIQUE )?INDEX IF NOT EXISTS "?([\w]+)"? ON ([\s\S]+)$/i.exec(stmt);
    if (create) {
      out.push({ kind: 'create', index: create[2], text: `CREATE ${create[1] ?? ''}INDEX CONCURRENTLY IF NOT EXISTS "${create[2]}" ON ${create[3]}` });
      continue;
    }
    const drop = /^DROP INDEX IF EXISTS "?([\w]+)"?$/i.exec(stmt);
    if (drop) out.push({ kind: 'drop', index: drop[1], text: `DROP INDEX CONCURRENTLY IF EXISTS "${drop[1]}"` });
  }
  return out.length === 0 ? [] : [...columns, ...out];
}

async function runConcurrently(sql: Sql, s: ConcurrentStatement): Promise<void> {
  if (s.kind === 'create') {
    // A build that died (crash, cancel, a duplicate for a unique index) leaves the index INVALID: IF NOT EXISTS
    // would keep it as it is, unused by the planner and still costing every write.
    const [invalid] = await sql`
      select 1 from pg_index i join pg_class c on c.oid = i.indexrelid
       where c.relname = ${s.index} and c.relnamespace = current_schema()::regnamespace and not i.indisvalid`;
    if (invalid) await sql.unsafe(`DROP INDEX CONCURRENTLY IF EXISTS "${s.index}"`);
  }
  await sql.unsafe(s.text);
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
