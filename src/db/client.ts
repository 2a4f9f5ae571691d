import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { assertPatched } from '../patches.js';

export type Sql = postgres.Sql;
/** A pool or a transaction: query functions take either, so they compose inside a caller's transaction. */
export type Queryable = postgres.Sql | postgres.TransactionSql;

export interface DbOptions {
  url: string;
  /** Connections at most; the pool never grows past this whatever the load. */
  max: number;
  connectTimeoutMs?: number;
  /**
   * Named prepared statements are faster but break behind a transaction-mode pooler (PgBouncer), which the web pool
   * must support. Workers connect directly and may prepare.
   */
  prepare?: boolean;
  /** Called for every statement sent (tests count statements per chunk with it). */
  onQuery?: (query: string, params: unknown[]) => void;
  applicationName?: string;
}

export interface DbHandle {
  sql: Sql;
  close(timeoutSeconds?: number): Promise<void>;
}

/**
 * Seconds before a connection that failed reconnects, by consecutive failures (shared by the pool's connections).
 * postgres.js's default grows as 3^n / 100 up to 20 s, and a connection's delay is fixed when it fails: after a
 * one-second restart under load (many refused attempts) a query handed to such a connection waited up to ~18 s
 * although the server was back (test/db/restart.test.ts). Capped at 1 s here (0.5-1 s with the jitter): a down server
 * still sees at most about 2 × `max` attempts a second from a pool.
 */
const reconnectBackoff = (retries: number) => Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2);

let patchChecked = false;

/**
 * Throws unless the postgres.js that `import 'postgres'` loads carries patches/postgres+3.4.9.patch: without it a
 * database restart can crash the process or leave queries waiting for ever (docs/operations.md). Checked once per
 * process, on the two files the patch changes.
 */
export function assertPostgresPatched(): void {
  if (patchChecked) return;
  assertPatched('postgres.js', path.dirname(fileURLToPath(import.meta.resolve('postgres'))), ['connection.js', 'index.js']);
  patchChecked = true;
}

/**
 * Opens a bounded pool lazily (no connection until the first query). Nothing connects on import. postgres.js's own
 * types are kept: a `Date` parameter binds as timestamptz and timestamptz columns come back as `Date`; a query that
 * needs microseconds selects `col::text` and says so in its row type.
 */
export function createDb(opts: DbOptions): DbHandle {
  assertPostgresPatched();
  const sql = postgres(opts.url, {
    max: opts.max,
    connect_timeout: Math.max(1, Math.ceil((opts.connectTimeoutMs ?? 5000) / 1000)),
    backoff: reconnectBackoff,
    prepare: opts.prepare ?? false,
    idle_timeout: 60,
    max_lifetime: 30 * 60,
    onnotice: () => {},
    connection: { application_name: opts.applicationName ?? 'wharf' },
    debug: opts.onQuery ? (_conn, query, params) => opts.onQuery?.(query, params as unknown[]) : undefined,
  });
  return { sql, close: (timeout = 5) => sql.end({ timeout }) };
}
