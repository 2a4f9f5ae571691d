import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { runMigrations } from '../src/db/migrate.js';
import { migrationsDir } from '../src/paths.js';

/**
 * Test databases: one migrated template per migration set, and a fresh copy of it per test file (CREATE DATABASE …
 * TEMPLATE is a file copy, ~50 ms), so files run in parallel without sharing state.
 *
 * The server: WHARF_TEST_ADMIN_URL (set by scripts/test.ts, which starts an embedded PostgreSQL unless DATABASE_URL is
 * set), else DATABASE_URL, else the local server on 127.0.0.1:5432.
 */
export function adminUrl(): string {
  return process.env.WHARF_TEST_ADMIN_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function templateName(): string {
  const h = createHash('sha256');
  for (const f of readdirSync(migrationsDir).sort()) if (f.endsWith('.sql')) h.update(readFileSync(path.join(migrationsDir, f)));
  return `wharf_template_${h.digest('hex').slice(0, 10)}`;
}

const TEMPLATE_LOCK = 7_202_611_23;

/** Creates the migrated template once per migration set (idempotent, safe from parallel files). */
export async function ensureTemplate(admin = adminUrl()): Promise<string> {
  const name = templateName();
  const sql = postgres(admin, { max: 1, onnotice: () => {} });
  try {
    await sql`select pg_advisory_lock(${TEMPLATE_LOCK})`;
    const [exists] = await sql`select 1 from pg_database where datname = ${name} and datistemplate`;
    if (!exists) {
      await sql.unsafe(`drop database if exists "${name}" with (force)`);
      await sql.unsafe(`create database "${name}"`);
      await runMigrations(withDatabase(admin, name));
      await sql.unsafe(`alter database "${name}" with is_template true allow_connections false`);
    }
    await sql`select pg_advisory_unlock(${TEMPLATE_LOCK})`;
  } finally {
    await sql.end();
  }
  return name;
}

/** A new, migrated, empty database; returns its URL and a function that drops it. */
export async function createTestDatabase(label = 't'): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = adminUrl();
  const template = await ensureTemplate(admin);
  const name = `wharf_${label.replace(/\W/g, '_').slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const sql = postgres(admin, { max: 1, onnotice: () => {} });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await sql.unsafe(`create database "${name}" template "${template}"`);
        break;
      } catch (err) {
        // 55006: the template is briefly in use by a concurrent CREATE DATABASE; retry.
        if ((err as { code?: string }).code !== '55006' || attempt > 20) throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  } finally {
    await sql.end();
  }
  return {
    url: withDatabase(admin, name),
    async drop() {
      const s = postgres(admin, { max: 1, onnotice: () => {} });
      try {
        await s.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await s.end();
      }
    },
  };
}

/** Drops every template (the runner does this at the end so a stale one never survives a schema change). */
export async function dropTemplates(admin = adminUrl()): Promise<void> {
  const sql = postgres(admin, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ datname: string }[]>`select datname from pg_database where datname like 'wharf_template_%'`;
    for (const { datname } of rows) {
      await sql.unsafe(`alter database "${datname}" with is_template false`);
      await sql.unsafe(`drop database if exists "${datname}" with (force)`);
    }
  } finally {
    await sql.end();
  }
}
