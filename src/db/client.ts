import postgres from 'postgres';

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
 * Opens a bounded pool lazily (no connection until the first query). Nothing connects on import. postgres.js's own
 * types are kept: a `Date` parameter binds as timestamptz and timestamptz columns come back as `Date`; a query that
 * needs microseconds selects `col::text` and says so in its row type.
 */
export function createDb(opts: DbOptions): DbHandle {
  const sql = postgres(opts.url, {
    max: opts.max,
    connect_timeout: Math.max(1, Math.ceil((opts.connectTimeoutMs ?? 5000) / 1000)),
    prepare: opts.prepare ?? false,
    idle_timeout: 60,
    max_lifetime: 30 * 60,
    onnotice: () => {},
    connection: { application_name: opts.applicationName ?? 'wharf' },
    debug: opts.onQuery ? (_conn, query, params) => opts.onQuery?.(query, params as unknown[]) : undefined,
  });
  return { sql, close: (timeout = 5) => sql.end({ timeout }) };
}
